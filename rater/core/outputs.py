"""Output records of SPEC section 8, built as plain dicts.

An :data:`Output` is ``(topic, key, value)``: the spec's topic name (the shell
adds its prefix), the Kafka key as bytes and the JSON-ready value. Every
value carries a deterministic id, so a consumer can drop duplicates.
"""

from __future__ import annotations

import base64
from typing import Any

from rater.core.clock import format_time
from rater.core.money import format_money
from rater.core.state import TenantState
from rater.core.topics import (
    LEDGER,
    NOTIFICATIONS,
    OVERAGE,
    RATER_DLQ,
    SERVICE_STATE,
    TOPUP_REQUESTS,
)

BLOCKED_SERVICES = ("tollfree_dialin", "international")

Output = tuple[str, bytes | None, dict[str, Any]]


def ledger(
    state: TenantState, entry_id: str, kind: str, amount: int, balance: int | None = None
) -> Output:
    """A ledger entry; call it after the change, so ``balance_after`` is current.

    ``balance`` saves recomputing it when the caller has it already.
    ``engine.apply_cdr`` builds a CDR's usage entry inline, in this same shape.
    """
    if balance is None:
        balance = state.balance()
    return (
        LEDGER,
        state.tenant_id.encode(),
        {
            "entry_id": entry_id,
            "tenant_id": state.tenant_id,
            "kind": kind,
            "amount": format_money(amount),
            "balance_after": format_money(balance),
            "at": format_time(state.clock),
        },
    )


def notification(state: TenantState, kind: str, ref: str, details: dict[str, Any]) -> Output:
    if state.contact_email is not None:
        details["contact_email"] = state.contact_email
        details["language"] = state.language
    return (
        NOTIFICATIONS,
        state.tenant_id.encode(),
        {
            "notification_id": f"{kind}:{ref}",
            "tenant_id": state.tenant_id,
            "type": kind,
            "at": format_time(state.clock),
            "details": details,
        },
    )


def overage(state: TenantState, overage_id: str, amount: int, cdr_id: str | None) -> Output:
    return (
        OVERAGE,
        state.tenant_id.encode(),
        {
            "overage_id": overage_id,
            "tenant_id": state.tenant_id,
            "amount": format_money(amount),
            "currency": state.currency,
            "cdr_id": cdr_id,
            "at": format_time(state.clock),
        },
    )


def topup_request(state: TenantState, n: int) -> Output:
    return (
        TOPUP_REQUESTS,
        state.tenant_id.encode(),
        {
            "request_id": state.request_id(n),
            "tenant_id": state.tenant_id,
            "amount": format_money(state.ar_amount),
            "currency": state.currency,
            "balance": format_money(state.balance()),
            "trigger_balance": format_money(state.ar_trigger),
            "at": format_time(state.clock),
        },
    )


def service_state(state: TenantState) -> Output:
    return (
        SERVICE_STATE,
        state.tenant_id.encode(),
        {
            "state_id": f"{state.tenant_id}:state:{state.state_seq}",
            "tenant_id": state.tenant_id,
            "blocked": state.blocked,
            "services": list(BLOCKED_SERVICES),
            "balance": format_money(state.balance()),
            "at": format_time(state.clock),
        },
    )


def text_and_encoding(raw: bytes) -> tuple[str, str]:
    """The raw bytes as a DLQ record writes them, and the encoding it names (SPEC 8).

    Valid UTF-8 is kept as text (``utf-8``); anything else is base64
    (``base64``), so the bytes can always be recovered without guessing.
    """
    try:
        return raw.decode(), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), "base64"


def dlq(
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    code: str,
    message: str,
    tenant_id: str | None,
) -> Output:
    """A ``rater-dlq`` record; it keeps the key of the message it rejects.

    ``value_encoding`` and ``key_encoding`` say how ``value`` and ``key`` hold
    the raw bytes (SPEC 8: the key follows the value's rule); null when the
    record had no value or key (decisions: "DLQ record encodings").
    """
    key_text, key_encoding = (None, None) if key is None else text_and_encoding(key)
    value_text, value_encoding = (None, None) if value is None else text_and_encoding(value)
    return (
        RATER_DLQ,
        key,
        {
            "dlq_id": f"{source_topic}:{partition}:{offset}",
            "tenant_id": tenant_id,
            "source_topic": source_topic,
            "partition": partition,
            "offset": offset,
            "key": key_text,
            "key_encoding": key_encoding,
            "value": value_text,
            "value_encoding": value_encoding,
            "error": {"code": code, "message": message},
        },
    )
