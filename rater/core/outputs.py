"""Output records of SPEC section 8, built as plain dicts.

An :data:`Output` is ``(topic, key, value)``: the spec's topic name (the shell
adds its prefix), the Kafka key as bytes and the JSON-ready value. Every
value carries a deterministic id, so a consumer can drop duplicates.
"""

from __future__ import annotations

from typing import Any

from rater.core.clock import format_time
from rater.core.money import format_money
from rater.core.state import TenantState
from rater.core.topics import (
    LEDGER,
    NOTIFICATIONS,
    OVERAGE,
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
