"""Rules of SPEC 5 to 9 that had no example, each through the engine (the Processor).

Every expected figure is worked out in a comment beside it. Default tariff
(tests/support/harness.py): outbound to +49, DE, 0.0240 EUR a minute, 60 s steps.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rater.core.clock import format_time
from tests.support.harness import Harness, dlq_code, on, one, t


def send(h: Harness, type_: str, at: str, event_id: str, tenant: str = "acme", **fields: Any):
    """An account event with an id of the test's choosing (the harness numbers its own)."""
    body = {"type": type_, "event_id": event_id, "tenant_id": tenant, "at": at} | fields
    return h.raw_event(tenant.encode(), orjson.dumps(body))


def call(h: Harness, cdr_id: str, started_at: str, duration_s: int, **fields: Any):
    body = {
        "cdr_id": cdr_id,
        "tenant_id": "acme",
        "call_type": "outbound",
        "plan": "pay_as_you_go",
        "origin_country": "DE",
        "destination": "+4930123456",
        "started_at": started_at,
        "duration_s": duration_s,
    } | fields
    return h.raw_cdr(b"acme", orjson.dumps(body))


def remaining(h: Harness) -> dict[str, int]:
    return {lot.lot_id: lot.remaining for lot in h.state().lots}


# --- SPEC 6.2: spending order, tie-breaks ---------------------------------------------------


def test_lots_with_the_same_expiry_are_spent_by_purchase_time_first() -> None:
    h = Harness()
    h.tariff("T1")
    h.open("2024-02-01T00:00:00Z")
    # 29 Feb 2024 + 12 months and 28 Feb 2024 + 12 months are both 28 Feb 2025 12:00
    send(h, "credits_purchased", "2024-02-29T12:00:00Z", "a-later", amount="1")
    send(h, "credits_purchased", "2024-02-28T12:00:00Z", "b-earlier", amount="1")
    lots = h.state().lots
    assert {format_time(lot.expires_at) for lot in lots} == {"2025-02-28T12:00:00Z"}
    call(h, "c1", "2024-03-01T00:00:00Z", 60)  # 0.024, from the lot bought first
    # lot_id order alone ("purchase:a-later" < "purchase:b-earlier") would pick the other
    assert remaining(h) == {"purchase:a-later": 1_000_000, "purchase:b-earlier": 976_000}


def test_lots_bought_at_the_same_instant_are_spent_by_lot_id() -> None:
    h = Harness()
    h.tariff("T1")
    h.open("2026-01-01T00:00:00Z")
    send(h, "credits_purchased", "2026-01-05T00:00:00Z", "zz", amount="1")
    send(h, "credits_purchased", "2026-01-05T00:00:00Z", "aa", amount="1")
    call(h, "c1", "2026-01-06T00:00:00Z", 60)  # 0.024 from "purchase:aa" < "purchase:zz"
    assert remaining(h) == {"purchase:aa": 976_000, "purchase:zz": 1_000_000}
    call(h, "c2", "2026-01-06T00:01:00Z", 60 * 41)  # 41 min: 0.984 = aa's 0.976 + 0.008
    assert remaining(h) == {"purchase:zz": 992_000}


# --- SPEC 6.1: 12 months, clamped, on a real lot ----------------------------------------------


def test_a_lot_bought_on_29_february_expires_on_28_february_at_the_same_time() -> None:
    h = Harness()
    h.tariff("T1")
    h.open("2024-02-01T00:00:00Z")
    send(h, "credits_purchased", "2024-02-29T10:00:00Z", "p", amount="1")
    (lot,) = h.state().lots
    assert format_time(lot.expires_at) == "2025-02-28T10:00:00Z"  # no 29 Feb in 2025
    # within 30 days of 2025-02-28T10:00 from 2025-01-29T10:00
    early = call(h, "c1", "2025-01-29T09:59:59Z", 0)
    assert on(early, "notifications") == []
    due = one(call(h, "c2", "2025-01-29T10:00:00Z", 0), "notifications")
    assert (due["type"], due["details"]["expires_at"]) == (
        "credits_expiring",
        "2025-02-28T10:00:00Z",
    )
    last = one(call(h, "c3", "2025-02-28T09:59:59Z", 60), "rated-cdrs")
    assert last["paid_from_credits"] == "0.024000"  # still live: 1 - 0.024 = 0.976 left
    outputs = call(h, "c4", "2025-02-28T10:00:00Z", 60)
    expiry = on(outputs, "ledger")[0]
    assert (expiry["entry_id"], expiry["amount"]) == ("expiry:purchase:p", "-0.976000")
    assert one(outputs, "rated-cdrs")["paid_from_deficit"] == "0.024000"


# --- SPEC 6.4: auto-recharge ---------------------------------------------------------------


def test_expiry_alone_triggers_auto_recharge() -> None:
    h = Harness()
    h.tariff("T1")
    h.open("2026-01-01T00:00:00Z")
    send(h, "credits_purchased", "2026-01-01T00:00:00Z", "old", amount="10")  # to 2027-01-01
    send(h, "credits_purchased", "2026-06-01T00:00:00Z", "new", amount="5")  # to 2027-06-01
    configured = send(
        h,
        "auto_recharge_configured",
        "2026-06-01T00:00:00Z",
        "ar",
        enabled=True,
        trigger_balance="6",
        recharge_amount="20",
    )
    assert on(configured, "topup-requests") == []  # 15 > 6
    outputs = call(h, "c1", "2027-01-01T00:00:00Z", 0)  # no usage: 0 s cost nothing
    assert one(outputs, "rated-cdrs")["amount"] == "0.000000"
    assert one(outputs, "ledger")["amount"] == "-10.000000"  # 15 - 10 = 5 <= 6
    assert one(outputs, "topup-requests") == {
        "request_id": "acme:topup:1",
        "tenant_id": "acme",
        "amount": "20.000000",
        "currency": "EUR",
        "balance": "5.000000",
        "trigger_balance": "6.000000",
        "at": "2027-01-01T00:00:00Z",
    }


def test_expiry_while_a_top_up_is_pending_asks_for_no_second_one() -> None:
    h = Harness()
    h.tariff("T1")
    h.open("2026-01-01T00:00:00Z")
    send(h, "credits_purchased", "2026-01-01T00:00:00Z", "p1", amount="3")
    send(h, "credits_purchased", "2026-02-01T00:00:00Z", "p2", amount="3")
    first = send(
        h,
        "auto_recharge_configured",
        "2026-02-01T00:00:00Z",
        "ar",
        enabled=True,
        trigger_balance="6",
        recharge_amount="20",
    )
    assert one(first, "topup-requests")["request_id"] == "acme:topup:1"  # 6 <= 6
    expired = call(h, "c1", "2027-01-01T00:00:00Z", 0)  # p1 expires: 3 left, still pending
    assert on(expired, "topup-requests") == []
    answer = send(
        h, "topup_succeeded", "2027-01-01T00:00:00Z", "ok", request_id="acme:topup:1", amount="2"
    )
    # 3 + 2 = 5 <= 6 and nothing pending: the success checks the trigger again
    assert one(answer, "topup-requests")["request_id"] == "acme:topup:2"
    assert one(answer, "topup-requests")["balance"] == "5.000000"


def test_nce_with_auto_recharge_on_keeps_being_recharged_and_has_no_overage() -> None:
    h = Harness()
    h.tariff("T1", rate_per_minute="6")
    h.open("2026-01-01T00:00:00Z")
    send(h, "credits_purchased", "2026-01-01T00:00:00Z", "p", amount="10")
    send(
        h,
        "auto_recharge_configured",
        "2026-01-01T00:00:00Z",
        "ar",
        enabled=True,
        trigger_balance="5",
        recharge_amount="20",
    )
    switched = send(h, "billing_model_changed", "2026-01-02T00:00:00Z", "nce", billing_model="nce")
    assert one(switched, "notifications")["notification_id"] == "nce_auto_recharge_enabled:nce"
    assert not h.state().post_usage_active
    used = call(h, "c1", "2026-01-03T00:00:00Z", 60)  # 6: 10 - 6 = 4 <= 5
    assert one(used, "topup-requests")["request_id"] == "acme:topup:1"
    send(
        h, "topup_succeeded", "2026-01-04T00:00:00Z", "ok1", request_id="acme:topup:1", amount="20"
    )
    assert h.state().balance() == 24_000_000  # 4 + 20
    over = call(h, "c2", "2026-01-05T00:00:00Z", 300)  # 5 min: 30 = 24 credits + 6 deficit
    rated = one(over, "rated-cdrs")
    assert (rated["paid_from_credits"], rated["paid_from_deficit"], rated["overage_amount"]) == (
        "24.000000",
        "6.000000",
        "0.000000",
    )
    assert on(over, "overage") == []
    assert one(over, "service-state")["blocked"] is True
    again = one(over, "topup-requests")
    assert (again["request_id"], again["balance"]) == ("acme:topup:2", "-6.000000")
    refused = send(h, "credits_purchased", "2026-01-05T00:00:00Z", "buy", amount="1")
    assert dlq_code(refused) == "purchase_not_allowed_for_nce"


# --- SPEC 6.6: zero balance caused by an account event ----------------------------------------


def test_an_account_event_that_brings_expiry_notifies_balance_zero_with_the_new_contact() -> None:
    h = Harness()
    h.tariff("T1")
    h.open("2026-01-01T00:00:00Z")
    send(h, "credits_purchased", "2026-01-01T00:00:00Z", "p", amount="0.5")
    call(h, "c1", "2026-01-02T00:00:00Z", 60)  # 0.5 - 0.024 = 0.476, lot ends 2027-01-01
    outputs = send(h, "contact_changed", "2027-01-01T00:00:00Z", "who", contact_email="a@b.de")
    assert one(outputs, "ledger")["amount"] == "-0.476000"
    zero = [n for n in on(outputs, "notifications") if n["type"] == "balance_zero"]
    assert zero == [
        {
            "notification_id": "balance_zero:event:who",
            "tenant_id": "acme",
            "type": "balance_zero",
            "at": "2027-01-01T00:00:00Z",
            # step 4 comes after the event is applied (SPEC 6.7): the new contact
            "details": {"balance": "0.000000", "contact_email": "a@b.de", "language": "en"},
        }
    ]
    assert on(outputs, "service-state") == []  # 0 is not below zero


# --- SPEC 8: `at` is the tenant clock ----------------------------------------------------------


def test_a_late_event_is_written_at_the_tenant_clock_and_its_lot_at_its_own_time() -> None:
    h = Harness()
    h.tariff("T1")
    h.open("2026-01-01T00:00:00Z")
    call(h, "c1", "2026-01-10T08:00:00Z", 0)  # tenant clock 2026-01-10T08:00
    late = send(h, "credits_purchased", "2026-01-05T00:00:00Z", "late", amount="2")
    assert one(late, "ledger")["at"] == "2026-01-10T08:00:00Z"
    (lot,) = h.state().lots
    assert (format_time(lot.purchased_at), format_time(lot.expires_at)) == (
        "2026-01-05T00:00:00Z",
        "2027-01-05T00:00:00Z",
    )
    rated = one(call(h, "c2", "2026-01-09T00:00:00Z", 60), "rated-cdrs")
    assert (rated["started_at"], rated["at"]) == ("2026-01-09T00:00:00Z", "2026-01-10T08:00:00Z")
    assert h.state().clock == t("2026-01-10T08:00:00Z")


# --- SPEC 6.1: future_time for account events --------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "fields"),
    [
        ("credits_purchased", {"amount": "1"}),
        ("auto_recharge_configured", {"enabled": False, "trigger_balance": "0"}),
        ("billing_model_changed", {"billing_model": "nce"}),
        ("minute_pool_allocated", {"pool": "domestic", "month": "2026-01", "minutes": 5}),
        ("contact_changed", {"contact_email": "a@b.de"}),
    ],
)
def test_account_events_more_than_five_minutes_ahead_are_future_time(type_, fields) -> None:
    h = Harness(now="2026-01-02T00:00:00Z")
    h.open("2026-01-01T00:00:00Z")
    ahead = send(h, type_, "2026-01-02T00:05:00.000001Z", "ahead", **fields)
    assert dlq_code(ahead) == "future_time"
    assert h.state().clock == t("2026-01-01T00:00:00Z")  # nothing changed
    accepted = send(h, type_, "2026-01-02T00:05:00Z", "ahead", **fields)
    assert on(accepted, "rater-dlq") == []
    assert h.state().clock == t("2026-01-02T00:05:00Z")


def test_account_opened_ahead_of_the_wall_clock_opens_nothing() -> None:
    h = Harness(now="2026-01-02T00:00:00Z")
    assert dlq_code(h.open("2026-01-02T00:05:01Z")) == "future_time"
    assert "acme" not in h.proc.states
    assert h.open("2026-01-02T00:05:00Z") == []
    assert "acme" in h.proc.states


# --- SPEC 9: precedence, one message breaking two rules ----------------------------------------

CDR = {
    "cdr_id": "c1",
    "tenant_id": "acme",
    "call_type": "outbound",
    "plan": "pay_as_you_go",
    "origin_country": "DE",
    "destination": "+4930123456",
    "started_at": "2026-03-01T00:00:00Z",
    "duration_s": 60,
}


def _account(h: Harness) -> None:
    """acme (EUR, prepaid) with 10 EUR bought, clock 2026-03-01, an applied CDR c1."""
    h.tariff("T1")
    h.open("2026-01-01T00:00:00Z")
    send(h, "credits_purchased", "2026-03-01T00:00:00Z", "p1", amount="10")
    send(
        h,
        "auto_recharge_configured",
        "2026-03-01T00:00:00Z",
        "ar-on",
        enabled=True,
        trigger_balance="0",
        recharge_amount="5",
    )
    send(
        h,
        "auto_recharge_configured",
        "2026-03-01T00:00:00Z",
        "ar-off",
        enabled=False,
        trigger_balance="0",
    )
    assert one(h.raw_cdr(b"acme", orjson.dumps(CDR)), "rated-cdrs")


def _cdr(h: Harness, key: bytes | None = b"acme", **fields: Any):
    return h.raw_cdr(key, orjson.dumps(CDR | fields))


def _nce(h: Harness) -> None:
    send(h, "billing_model_changed", "2026-03-01T00:00:00Z", "to-nce", billing_model="nce")


def _delete_tariff(h: Harness) -> None:
    h.raw_tariff(b"T1", None)


def _wall_clock_behind(h: Harness) -> None:
    h.now = t("2026-01-01T00:00:00Z")  # the tenant clock is 2026-03-01


# fmt: off
PRECEDENCE = [
    # (which two rules, set-up, message, expected code or "ignored")
    ("invalid_json over invalid_field", None, lambda h: h.raw_cdr(b"acme", b'{"tenant_id": 5'),
     "invalid_json"),
    ("invalid_field(tenant_id) over key_mismatch", None,
     lambda h: _cdr(h, key=b"other", tenant_id=""), "invalid_field"),
    ("key_mismatch over invalid_field(other field)", None,
     lambda h: _cdr(h, key=b"other", duration_s=-1), "key_mismatch"),
    ("invalid_field over unknown_account", None,
     lambda h: _cdr(h, key=b"nobody", tenant_id="nobody", duration_s=-1), "invalid_field"),
    ("invalid_field over unknown_account (event)", None,
     lambda h: send(h, "credits_purchased", "2026-03-01T00:00:00Z", "x", tenant="nobody",
                    amount="-1"), "invalid_field"),
    ("unknown_account over future_time", None,
     lambda h: _cdr(h, key=b"nobody", tenant_id="nobody", started_at="2045-01-01T00:00:00Z"),
     "unknown_account"),
    ("future_time over too_late", _wall_clock_behind,
     lambda h: _cdr(h, cdr_id="c9", started_at="2026-01-10T00:00:00Z"), "future_time"),
    ("too_late over currency_mismatch", None,
     lambda h: send(h, "credits_purchased", "2026-01-24T00:00:00Z", "p9", amount="1",
                    currency="USD"), "too_late"),
    ("currency_mismatch over duplicate", None,
     lambda h: send(h, "credits_purchased", "2026-03-01T00:00:00Z", "p1", amount="10",
                    currency="USD"), "currency_mismatch"),
    ("duplicate over purchase_not_allowed_for_nce", _nce,
     lambda h: send(h, "credits_purchased", "2026-03-01T00:00:00Z", "p1", amount="10"),
     "ignored"),
    ("duplicate over auto_recharge_not_allowed_for_nce", _nce,
     lambda h: send(h, "auto_recharge_configured", "2026-03-01T00:00:00Z", "ar-on", enabled=True,
                    trigger_balance="0", recharge_amount="5"), "ignored"),
    ("duplicate over unknown_topup_request", None,
     lambda h: send(h, "topup_failed", "2026-03-01T00:00:00Z", "p1", request_id="acme:topup:7",
                    reason="x"), "ignored"),
    ("duplicate over no_tariff", _delete_tariff, lambda h: _cdr(h), "ignored"),
    ("the same messages, not duplicates: purchase_not_allowed_for_nce", _nce,
     lambda h: send(h, "credits_purchased", "2026-03-01T00:00:00Z", "p2", amount="10"),
     "purchase_not_allowed_for_nce"),
    ("auto_recharge_not_allowed_for_nce", _nce,
     lambda h: send(h, "auto_recharge_configured", "2026-03-01T00:00:00Z", "ar-2", enabled=True,
                    trigger_balance="0", recharge_amount="5"), "auto_recharge_not_allowed_for_nce"),
    ("unknown_topup_request", None,
     lambda h: send(h, "topup_failed", "2026-03-01T00:00:00Z", "f1", request_id="acme:topup:7",
                    reason="x"), "unknown_topup_request"),
    ("no_tariff", _delete_tariff, lambda h: _cdr(h, cdr_id="c2"), "no_tariff"),
]
# fmt: on


@pytest.mark.parametrize(
    ("rules", "setup", "message", "expected"), PRECEDENCE, ids=[row[0] for row in PRECEDENCE]
)
def test_the_first_rule_of_the_precedence_chain_decides(rules, setup, message, expected) -> None:
    h = Harness()
    _account(h)
    if setup is not None:
        setup(h)
    before = (h.state().balance(), h.state().clock, len(h.state().seen))
    outputs = message(h)
    if expected == "ignored":
        assert outputs == []
    else:
        assert dlq_code(outputs) == expected
    assert (h.state().balance(), h.state().clock, len(h.state().seen)) == before
