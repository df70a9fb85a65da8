"""The JSON Schemas in schemas/ are valid draft 2020-12 and say what SPEC sections 2-4 and 8 say.

Each topic gets hand-written messages: valid ones that must pass and broken ones that must fail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from rater.core.topics import OUTPUT_TOPICS, TOPICS

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

# The product's own topic lists: a schema file for each topic the rater uses, no more.

_DROP = object()


def load(topic: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{topic}.json").read_text(encoding="utf-8"))


def validator(topic: str) -> Draft202012Validator:
    return Draft202012Validator(load(topic), format_checker=Draft202012Validator.FORMAT_CHECKER)


def w(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Copy of base with fields replaced; a value of _DROP removes the field."""
    out = dict(base)
    for name, value in changes.items():
        if value is _DROP:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def wd(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Copy of a notification with its details changed."""
    return w(base, details=w(base["details"], **changes))


# ------------------------------------------------------------------------------- base messages

CDR = {
    "cdr_id": "c-1",
    "tenant_id": "t1",
    "call_type": "outbound",
    "plan": "domestic",
    "origin_country": "DE",
    "destination": "+4930123456",
    "started_at": "2025-03-01T10:00:00Z",
    "duration_s": 61,
}
CONF = w(CDR, call_type="conference_dialout", plan=_DROP)

EV = {"event_id": "e-1", "tenant_id": "t1", "at": "2025-03-01T10:00:00+01:00"}
OPENED = {**EV, "type": "account_opened", "currency": "EUR"}
PURCHASED = {**EV, "type": "credits_purchased", "amount": "12.5"}
AR_ON = {
    **EV,
    "type": "auto_recharge_configured",
    "enabled": True,
    "trigger_balance": "5",
    "recharge_amount": "20.000000",
}
AR_OFF = {**EV, "type": "auto_recharge_configured", "enabled": False, "trigger_balance": "0"}
MODEL = {**EV, "type": "billing_model_changed", "billing_model": "nce"}
POOL = {
    **EV,
    "type": "minute_pool_allocated",
    "pool": "domestic",
    "month": "2025-03",
    "minutes": 100,
}
TOPUP_OK = {**EV, "type": "topup_succeeded", "request_id": "t1:topup:1", "amount": "20"}
TOPUP_FAIL = {**EV, "type": "topup_failed", "request_id": "t1:topup:1", "reason": "card expired"}
CONTACT = {**EV, "type": "contact_changed", "contact_email": "ops@example.com"}

TARIFF = {
    "tariff_id": "de-mobile",
    "call_type": "outbound",
    "prefix": "4915",
    "country": "DE",
    "currency": "EUR",
    "rate_per_minute": "0.0240",
    "effective_from": "2025-01-01T00:00:00Z",
}

RATED = {
    "cdr_id": "c-1",
    "tenant_id": "t1",
    "tariff_id": "de-mobile",
    "call_type": "outbound",
    "destination_country": "DE",
    "billed_s": 120,
    "pool": "domestic",
    "pool_s": 60,
    "chargeable_s": 60,
    "amount": "0.024000",
    "currency": "EUR",
    "paid_from_credits": "0.020000",
    "paid_from_deficit": "0.004000",
    "overage_amount": "0.000000",
    "balance_after": "-0.004000",
    "started_at": "2025-03-01T09:00:00Z",
    "at": "2025-03-01T09:00:00.123456Z",
}

LEDGER = {
    "entry_id": "usage:c-1",
    "tenant_id": "t1",
    "kind": "usage",
    "amount": "-0.024000",
    "balance_after": "12.476000",
    "at": "2025-03-01T09:00:00Z",
}

TOPUP_REQ = {
    "request_id": "t1:topup:1",
    "tenant_id": "t1",
    "amount": "20.000000",
    "currency": "EUR",
    "balance": "4.990000",
    "trigger_balance": "5.000000",
    "at": "2025-03-01T09:00:00Z",
}

OVERAGE = {
    "overage_id": "cdr:c-1",
    "tenant_id": "t1",
    "amount": "0.024000",
    "currency": "EUR",
    "cdr_id": "c-1",
    "at": "2025-03-01T09:00:00Z",
}
OVERAGE_DEFICIT = w(OVERAGE, overage_id="deficit:e-7", cdr_id=None, amount="3.000000")

NOTE = {"tenant_id": "t1", "at": "2025-03-01T09:00:00Z"}
N_AR_OK = {
    **NOTE,
    "notification_id": "auto_recharge_succeeded:t1:topup:1",
    "type": "auto_recharge_succeeded",
    "details": {
        "amount": "20.000000",
        "balance": "24.990000",
        "contact_email": "ops@example.com",
        "language": "de",
    },
}
N_AR_FAIL = {
    **NOTE,
    "notification_id": "auto_recharge_failed:t1:topup:2",
    "type": "auto_recharge_failed",
    "details": {"reason": "card expired"},
}
N_ZERO = {
    **NOTE,
    "notification_id": "balance_zero:cdr:c-9",
    "type": "balance_zero",
    "details": {"balance": "-0.500000"},
}
N_EXPIRING = {
    **NOTE,
    "notification_id": "credits_expiring:purchase:e-1",
    "type": "credits_expiring",
    "details": {
        "lot_id": "purchase:e-1",
        "amount": "3.000000",
        "expires_at": "2026-03-01T09:00:00Z",
    },
}
N_EXPIRED = {
    **NOTE,
    "notification_id": "credits_expired:topup:t1:topup:3",
    "type": "credits_expired",
    "details": {"lot_id": "topup:t1:topup:3", "amount": "1.500000"},
}
N_NCE = {
    **NOTE,
    "notification_id": "nce_auto_recharge_enabled:e-4",
    "type": "nce_auto_recharge_enabled",
    "details": {},
}

STATE = {
    "state_id": "t1:state:1",
    "tenant_id": "t1",
    "blocked": True,
    "services": ["tollfree_dialin", "international"],
    "balance": "-0.004000",
    "at": "2025-03-01T09:00:00Z",
}

DLQ = {
    "dlq_id": "cdrs:3:1042",
    "tenant_id": "t1",
    "source_topic": "cdrs",
    "partition": 3,
    "offset": 1042,
    "key": "t1",
    "key_encoding": "utf-8",
    "value": '{"cdr_id": "c-1"}',
    "value_encoding": "utf-8",
    "error": {"code": "invalid_field", "message": "started_at: missing"},
}

# ------------------------------------------------------------------------------------ examples

VALID: list[tuple[str, str, dict[str, Any]]] = [
    ("cdrs", "outbound", CDR),
    ("cdrs", "conference without plan", CONF),
    ("cdrs", "conference with plan ignored", w(CONF, plan="pay_as_you_go")),
    ("cdrs", "user_id and unknown extra field", w(CDR, user_id="u-1", codec="opus")),
    ("cdrs", "zero duration", w(CDR, duration_s=0)),
    ("cdrs", "max duration", w(CDR, duration_s=86400)),
    (
        "cdrs",
        "tollfree",
        w(CONF, call_type="conference_tollfree_dialin", destination="+18005550100"),
    ),
    ("cdrs", "lowercase t/z and fraction", w(CDR, started_at="2025-03-01t10:00:00.123456789z")),
    ("cdrs", "negative offset", w(CDR, started_at="2025-03-01T10:00:00-05:30")),
    ("cdrs", "128-char cdr_id, 64-char tenant", w(CDR, cdr_id="x" * 128, tenant_id="t" * 64)),
    ("account-events", "account_opened", OPENED),
    (
        "account-events",
        "account_opened full",
        w(OPENED, billing_model="nce", contact_email="a.b+c@mail.example.co.uk", language="de"),
    ),
    ("account-events", "credits_purchased", PURCHASED),
    ("account-events", "credits_purchased with currency", w(PURCHASED, currency="EUR")),
    ("account-events", "credits_purchased 6 decimals", w(PURCHASED, amount="0.000001")),
    ("account-events", "credits_purchased trailing zeros", w(PURCHASED, amount="0.0240")),
    ("account-events", "auto_recharge on", AR_ON),
    ("account-events", "auto_recharge off", AR_OFF),
    ("account-events", "auto_recharge off with amount", w(AR_OFF, recharge_amount="0")),
    ("account-events", "billing_model_changed", MODEL),
    ("account-events", "minute_pool_allocated", POOL),
    ("account-events", "minute_pool zero", w(POOL, minutes=0, pool="international")),
    ("account-events", "topup_succeeded", TOPUP_OK),
    ("account-events", "topup_succeeded unknown-looking id", w(TOPUP_OK, request_id="zzz")),
    ("account-events", "topup_failed", TOPUP_FAIL),
    ("account-events", "topup_failed empty reason", w(TOPUP_FAIL, reason="")),
    ("account-events", "contact_changed", CONTACT),
    ("account-events", "contact_changed with language", w(CONTACT, language="en")),
    (
        "account-events",
        "254-char email",
        w(CONTACT, contact_email="a" * 240 + "@example.com" + "ab"),
    ),
    ("account-events", "extra field", w(OPENED, source="shop")),
    ("tariffs", "minimal", TARIFF),
    (
        "tariffs",
        "full",
        w(
            TARIFF,
            connection_fee="0.1",
            first_increment_s=1,
            increment_s=1,
            effective_to="2026-01-01T00:00:00Z",
        ),
    ),
    ("tariffs", "open end", w(TARIFF, effective_to=None)),
    ("tariffs", "15-digit prefix", w(TARIFF, prefix="123456789012345")),
    ("tariffs", "free rate", w(TARIFF, rate_per_minute="0")),
    ("rated-cdrs", "with pool", RATED),
    ("rated-cdrs", "no pool", w(RATED, pool=None, pool_s=0)),
    (
        "rated-cdrs",
        "zero amount",
        w(
            RATED,
            amount="0.000000",
            paid_from_credits="0.000000",
            paid_from_deficit="0.000000",
            balance_after="0.000000",
        ),
    ),
    ("ledger", "usage", LEDGER),
    ("ledger", "purchase", w(LEDGER, entry_id="purchase:e-1", kind="purchase", amount="12.500000")),
    ("ledger", "topup", w(LEDGER, entry_id="topup:t1:topup:1", kind="topup", amount="20.000000")),
    (
        "ledger",
        "expiry purchase lot",
        w(LEDGER, entry_id="expiry:purchase:e-1", kind="expiry", amount="-3.000000"),
    ),
    (
        "ledger",
        "expiry topup lot",
        w(LEDGER, entry_id="expiry:topup:t1:topup:2", kind="expiry", amount="-0.000001"),
    ),
    (
        "ledger",
        "overage_transfer",
        w(
            LEDGER,
            entry_id="transfer:e-7",
            kind="overage_transfer",
            amount="3.000000",
            balance_after="0.000000",
        ),
    ),
    ("topup-requests", "request", TOPUP_REQ),
    (
        "topup-requests",
        "negative balance",
        w(TOPUP_REQ, request_id="a:b:topup:12", balance="-1.000000"),
    ),
    ("overage", "cdr", OVERAGE),
    ("overage", "moved deficit", OVERAGE_DEFICIT),
    ("notifications", "auto_recharge_succeeded", N_AR_OK),
    ("notifications", "auto_recharge_failed", N_AR_FAIL),
    ("notifications", "balance_zero negative", N_ZERO),
    ("notifications", "balance_zero exactly zero", wd(N_ZERO, balance="0.000000")),
    ("notifications", "credits_expiring", N_EXPIRING),
    ("notifications", "credits_expired", N_EXPIRED),
    ("notifications", "nce_auto_recharge_enabled", N_NCE),
    (
        "notifications",
        "nce with contact",
        wd(N_NCE, contact_email="ops@example.com", language="en"),
    ),
    ("service-state", "blocked", STATE),
    (
        "service-state",
        "unblocked",
        w(STATE, state_id="t1:state:2", blocked=False, balance="0.000000"),
    ),
    ("rater-dlq", "invalid_field", DLQ),
    (
        "rater-dlq",
        "unknown tenant, no key, no value",
        w(
            DLQ,
            tenant_id=None,
            key=None,
            key_encoding=None,
            value=None,
            value_encoding=None,
            error={"code": "invalid_json", "message": "no value"},
        ),
    ),
    ("rater-dlq", "internal_error", w(DLQ, error={"code": "internal_error", "message": "boom"})),
    ("rater-dlq", "binary value", w(DLQ, value="gIE=", value_encoding="base64")),
    (
        "notifications",
        "balance_zero by an event",
        w(N_ZERO, notification_id="balance_zero:event:e-1"),
    ),
    (
        "notifications",
        "balance_zero by the sweep",
        w(N_ZERO, notification_id="balance_zero:sweep:2040-01-01T00:00:00Z"),
    ),
    (
        "rater-dlq",
        "prefixed topic with colon",
        w(
            DLQ,
            dlq_id="prod.tariffs:0:0",
            source_topic="prod.tariffs",
            partition=0,
            offset=0,
            key="de-mobile",
            tenant_id=None,
            error={"code": "no_tariff", "message": ""},
        ),
    ),
]

INVALID: list[tuple[str, str, Any]] = [
    ("cdrs", "not an object", [CDR]),
    ("cdrs", "missing cdr_id", w(CDR, cdr_id=_DROP)),
    ("cdrs", "empty cdr_id", w(CDR, cdr_id="")),
    ("cdrs", "129-char cdr_id", w(CDR, cdr_id="x" * 129)),
    ("cdrs", "65-char tenant_id", w(CDR, tenant_id="t" * 65)),
    ("cdrs", "outbound without plan", w(CDR, plan=_DROP)),
    ("cdrs", "unknown plan", w(CDR, plan="unlimited")),
    ("cdrs", "unknown call_type", w(CDR, call_type="inbound")),
    ("cdrs", "E.164 without +", w(CDR, destination="4930123456")),
    ("cdrs", "E.164 too short", w(CDR, destination="+12345")),
    ("cdrs", "E.164 too long", w(CDR, destination="+1234567890123456")),
    ("cdrs", "E.164 with spaces", w(CDR, destination="+49 30 123456")),
    ("cdrs", "lowercase country", w(CDR, origin_country="de")),
    ("cdrs", "negative duration", w(CDR, duration_s=-1)),
    ("cdrs", "duration over a day", w(CDR, duration_s=86401)),
    ("cdrs", "fractional duration", w(CDR, duration_s=1.5)),
    ("cdrs", "duration as string", w(CDR, duration_s="60")),
    ("cdrs", "time without offset", w(CDR, started_at="2025-03-01T10:00:00")),
    ("cdrs", "date only", w(CDR, started_at="2025-03-01")),
    ("cdrs", "month 13", w(CDR, started_at="2025-13-01T10:00:00Z")),
    ("cdrs", "hour 24", w(CDR, started_at="2025-03-01T24:00:00Z")),
    ("cdrs", "epoch number", w(CDR, started_at=1740823200)),
    ("cdrs", "user_id not a string", w(CDR, user_id=7)),
    ("account-events", "missing type", w(OPENED, type=_DROP)),
    ("account-events", "unknown type", w(OPENED, type="account_closed")),
    ("account-events", "missing event_id", w(OPENED, event_id=_DROP)),
    ("account-events", "missing at", w(OPENED, at=_DROP)),
    ("account-events", "opened without currency", w(OPENED, currency=_DROP)),
    ("account-events", "currency lowercase", w(OPENED, currency="eur")),
    ("account-events", "bad billing_model", w(OPENED, billing_model="postpaid")),
    ("account-events", "bad language", w(OPENED, contact_email="a@b.cc", language="fr")),
    ("account-events", "email without @", w(CONTACT, contact_email="ops.example.com")),
    ("account-events", "email with two @", w(CONTACT, contact_email="a@b@example.com")),
    ("account-events", "email with space", w(CONTACT, contact_email="o ps@example.com")),
    ("account-events", "email without tld", w(CONTACT, contact_email="ops@localhost")),
    ("account-events", "email empty label", w(CONTACT, contact_email="ops@example..com")),
    (
        "account-events",
        "255-char email",
        w(CONTACT, contact_email="a" * 240 + "@example.com" + "abc"),
    ),
    ("account-events", "contact_changed without email", w(CONTACT, contact_email=_DROP)),
    ("account-events", "money as float", w(PURCHASED, amount=12.5)),
    ("account-events", "money with 7 decimals", w(PURCHASED, amount="0.0000001")),
    ("account-events", "money zero", w(PURCHASED, amount="0.000")),
    ("account-events", "money negative", w(PURCHASED, amount="-1")),
    ("account-events", "money leading zero", w(PURCHASED, amount="012")),
    ("account-events", "money with plus sign", w(PURCHASED, amount="+1")),
    ("account-events", "money trailing dot", w(PURCHASED, amount="1.")),
    ("account-events", "money leading dot", w(PURCHASED, amount=".5")),
    ("account-events", "money exponent", w(PURCHASED, amount="1e3")),
    ("account-events", "money with spaces", w(PURCHASED, amount=" 1")),
    ("account-events", "purchase without amount", w(PURCHASED, amount=_DROP)),
    ("account-events", "enabled without recharge_amount", w(AR_ON, recharge_amount=_DROP)),
    ("account-events", "enabled with zero recharge_amount", w(AR_ON, recharge_amount="0")),
    ("account-events", "missing trigger_balance", w(AR_ON, trigger_balance=_DROP)),
    ("account-events", "negative trigger_balance", w(AR_OFF, trigger_balance="-1")),
    ("account-events", "enabled not boolean", w(AR_OFF, enabled="false")),
    ("account-events", "model_changed without model", w(MODEL, billing_model=_DROP)),
    ("account-events", "bad pool", w(POOL, pool="mobile")),
    ("account-events", "bad month", w(POOL, month="2025-3")),
    ("account-events", "month 00", w(POOL, month="2025-00")),
    ("account-events", "negative minutes", w(POOL, minutes=-1)),
    ("account-events", "minutes as string", w(POOL, minutes="100")),
    ("account-events", "topup_succeeded without request_id", w(TOPUP_OK, request_id=_DROP)),
    ("account-events", "topup_succeeded empty request_id", w(TOPUP_OK, request_id="")),
    ("account-events", "topup_succeeded zero amount", w(TOPUP_OK, amount="0")),
    ("account-events", "topup_failed without reason", w(TOPUP_FAIL, reason=_DROP)),
    ("tariffs", "missing effective_from", w(TARIFF, effective_from=_DROP)),
    ("tariffs", "missing rate", w(TARIFF, rate_per_minute=_DROP)),
    ("tariffs", "prefix with +", w(TARIFF, prefix="+49")),
    ("tariffs", "empty prefix", w(TARIFF, prefix="")),
    ("tariffs", "16-digit prefix", w(TARIFF, prefix="1234567890123456")),
    ("tariffs", "rate float", w(TARIFF, rate_per_minute=0.024)),
    ("tariffs", "negative connection_fee", w(TARIFF, connection_fee="-0.1")),
    ("tariffs", "zero increment", w(TARIFF, increment_s=0)),
    ("tariffs", "zero first increment", w(TARIFF, first_increment_s=0)),
    ("tariffs", "bad effective_to", w(TARIFF, effective_to="never")),
    ("tariffs", "bad call_type", w(TARIFF, call_type="any")),
    ("rated-cdrs", "money without 6 decimals", w(RATED, amount="0.024")),
    ("rated-cdrs", "money with 7 decimals", w(RATED, amount="0.0240000")),
    ("rated-cdrs", "money as float", w(RATED, amount=0.024)),
    ("rated-cdrs", "negative amount", w(RATED, amount="-0.024000")),
    ("rated-cdrs", "negative zero balance", w(RATED, balance_after="-0.000000")),
    ("rated-cdrs", "missing pool", w(RATED, pool=_DROP)),
    ("rated-cdrs", "unknown pool", w(RATED, pool="mobile")),
    ("rated-cdrs", "null pool with pool_s", w(RATED, pool=None)),
    ("rated-cdrs", "extra field", w(RATED, user_id="u-1")),
    ("rated-cdrs", "time not UTC", w(RATED, at="2025-03-01T10:00:00+01:00")),
    ("rated-cdrs", "time lowercase z", w(RATED, at="2025-03-01T09:00:00z")),
    ("rated-cdrs", "started_at not UTC", w(RATED, started_at="2025-03-01T10:00:00+01:00")),
    ("rated-cdrs", "missing balance_after", w(RATED, balance_after=_DROP)),
    ("ledger", "zero amount", w(LEDGER, amount="0.000000")),
    ("ledger", "negative zero amount", w(LEDGER, amount="-0.000000")),
    ("ledger", "positive usage", w(LEDGER, amount="0.024000")),
    ("ledger", "negative purchase", w(LEDGER, entry_id="purchase:e-1", kind="purchase")),
    ("ledger", "kind and prefix disagree", w(LEDGER, entry_id="purchase:e-1")),
    ("ledger", "bad entry prefix", w(LEDGER, entry_id="refund:e-1")),
    ("ledger", "unknown kind", w(LEDGER, kind="refund")),
    ("ledger", "expiry of non-lot", w(LEDGER, entry_id="expiry:e-1", kind="expiry")),
    (
        "ledger",
        "topup entry without request id",
        w(LEDGER, entry_id="topup:e-1", kind="topup", amount="1.000000"),
    ),
    ("ledger", "amount short decimals", w(LEDGER, amount="-0.02")),
    ("ledger", "missing at", w(LEDGER, at=_DROP)),
    ("topup-requests", "bad request_id", w(TOPUP_REQ, request_id="t1:topup:0")),
    ("topup-requests", "request_id without n", w(TOPUP_REQ, request_id="t1:topup:")),
    ("topup-requests", "zero amount", w(TOPUP_REQ, amount="0.000000")),
    ("topup-requests", "negative trigger", w(TOPUP_REQ, trigger_balance="-1.000000")),
    ("topup-requests", "missing currency", w(TOPUP_REQ, currency=_DROP)),
    ("topup-requests", "extra field", w(TOPUP_REQ, enabled=True)),
    ("overage", "zero amount", w(OVERAGE, amount="0.000000")),
    ("overage", "missing cdr_id", w(OVERAGE, cdr_id=_DROP)),
    ("overage", "null cdr_id but no deficit id", w(OVERAGE, cdr_id=None)),
    ("overage", "bare cdr_id as id", w(OVERAGE, overage_id="c-1")),
    ("overage", "deficit id for a cdr", w(OVERAGE, overage_id="deficit:e-7")),
    ("overage", "money 2 decimals", w(OVERAGE, amount="0.02")),
    (
        "notifications",
        "unknown type",
        w(N_ZERO, type="low_balance", notification_id="low_balance:c-9"),
    ),
    ("notifications", "id of another type", w(N_ZERO, notification_id="credits_expired:c-9")),
    ("notifications", "id without ref", w(N_ZERO, notification_id="balance_zero:")),
    ("notifications", "balance_zero bare id", w(N_ZERO, notification_id="balance_zero:c-9")),
    ("notifications", "balance_zero empty cdr", w(N_ZERO, notification_id="balance_zero:cdr:")),
    (
        "notifications",
        "recharge id not a request",
        w(N_AR_FAIL, notification_id="auto_recharge_failed:e-1"),
    ),
    ("notifications", "details missing amount", wd(N_AR_OK, amount=_DROP)),
    ("notifications", "details extra field", wd(N_AR_FAIL, amount="1.000000")),
    ("notifications", "details of another type", w(N_ZERO, details=N_AR_FAIL["details"])),
    ("notifications", "nce details not empty", wd(N_NCE, reason="x")),
    ("notifications", "balance_zero positive", wd(N_ZERO, balance="0.500000")),
    ("notifications", "expiring bad lot_id", wd(N_EXPIRING, lot_id="e-1")),
    (
        "notifications",
        "expiring time not UTC",
        wd(N_EXPIRING, expires_at="2026-03-01T10:00:00+01:00"),
    ),
    ("notifications", "expired zero amount", wd(N_EXPIRED, amount="0.000000")),
    ("notifications", "email without language", wd(N_AR_FAIL, contact_email="a@b.cc")),
    ("notifications", "language without email", wd(N_AR_FAIL, language="en")),
    ("notifications", "bad language", wd(N_AR_FAIL, contact_email="a@b.cc", language="fr")),
    ("notifications", "details missing", w(N_NCE, details=_DROP)),
    ("notifications", "money float in details", wd(N_ZERO, balance=0.0)),
    (
        "service-state",
        "services reordered",
        w(STATE, services=["international", "tollfree_dialin"]),
    ),
    ("service-state", "services partial", w(STATE, services=["international"])),
    ("service-state", "blocked with balance >= 0", w(STATE, balance="0.000000")),
    ("service-state", "unblocked with negative balance", w(STATE, blocked=False)),
    ("service-state", "state n zero", w(STATE, state_id="t1:state:0")),
    ("service-state", "blocked not boolean", w(STATE, blocked="true")),
    ("rater-dlq", "unknown code", w(DLQ, error={"code": "oops", "message": "x"})),
    ("rater-dlq", "error without message", w(DLQ, error={"code": "invalid_json"})),
    (
        "rater-dlq",
        "error extra field",
        w(DLQ, error={"code": "invalid_json", "message": "x", "detail": 1}),
    ),
    ("rater-dlq", "bad dlq_id", w(DLQ, dlq_id="cdrs-3-1042")),
    ("rater-dlq", "negative offset", w(DLQ, offset=-1)),
    ("rater-dlq", "partition as string", w(DLQ, partition="3")),
    ("rater-dlq", "missing key", w(DLQ, key=_DROP)),
    ("rater-dlq", "missing value_encoding", w(DLQ, value_encoding=_DROP)),
    ("rater-dlq", "missing key_encoding", w(DLQ, key_encoding=_DROP)),
    ("rater-dlq", "unknown encoding", w(DLQ, value_encoding="latin-1")),
    ("rater-dlq", "value without encoding", w(DLQ, value_encoding=None)),
    ("rater-dlq", "encoding without value", w(DLQ, value=None)),
    ("rater-dlq", "encoding without key", w(DLQ, key=None)),
    ("rater-dlq", "value as object", w(DLQ, value={"cdr_id": "c-1"})),
    ("rater-dlq", "empty tenant_id", w(DLQ, tenant_id="")),
]


# --------------------------------------------------------------------------------------- tests


def test_one_schema_per_topic() -> None:
    assert sorted(p.stem for p in SCHEMA_DIR.glob("*.json")) == sorted(TOPICS)


@pytest.mark.parametrize("topic", TOPICS)
def test_schema_is_valid_draft_2020_12(topic: str) -> None:
    schema = load(topic)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:rater:schema:{topic}"
    assert schema["title"]
    assert f"`{topic}`" in schema["description"]
    assert schema["type"] == "object"


@pytest.mark.parametrize("topic", TOPICS)
def test_inputs_open_outputs_closed(topic: str) -> None:
    schema = load(topic)
    if topic in OUTPUT_TOPICS:
        assert schema["additionalProperties"] is False
        assert sorted(schema["required"]) == sorted(schema["properties"])
    else:
        assert schema["additionalProperties"] is True


@pytest.mark.parametrize(
    ("topic", "message"),
    [pytest.param(t, m, id=f"{t}: {label}") for t, label, m in VALID],
)
def test_valid_example_accepted(topic: str, message: dict[str, Any]) -> None:
    errors = [e.message for e in validator(topic).iter_errors(message)]
    assert errors == []


@pytest.mark.parametrize(
    ("topic", "message"),
    [pytest.param(t, m, id=f"{t}: {label}") for t, label, m in INVALID],
)
def test_invalid_example_rejected(topic: str, message: Any) -> None:
    assert not validator(topic).is_valid(message)


def test_every_topic_has_examples() -> None:
    assert {t for t, _, _ in VALID} == set(TOPICS)
    assert {t for t, _, _ in INVALID} == set(TOPICS)
