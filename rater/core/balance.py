"""A tenant's balance as the operator API shows it (SPEC 11), from its state.

Pure: the web view decodes the committed state and calls :func:`balance_view`;
tests call it on the core's own state to compare field by field. Money and
times are written as on the wire (SPEC 2): 6 fractional digits, UTC with ``Z``.
"""

from __future__ import annotations

from typing import Any

from rater.core.clock import format_time, month_of
from rater.core.messages import POOLS
from rater.core.money import format_money
from rater.core.state import TenantState


def balance_view(state: TenantState) -> dict[str, Any]:
    """The ``GET /tenants/{tenant_id}/balance`` body of one tenant.

    ``pools`` shows the month of the tenant clock (its latest event), not the
    wall clock's: the month the rater would draw from now, replays included
    (docs/decisions.md D35 ("Operator interfaces")).
    """
    month = month_of(state.clock)
    pending = state.pending_request
    return {
        "tenant_id": state.tenant_id,
        "currency": state.currency,
        "billing_model": state.billing_model,
        "post_usage_active": state.post_usage_active,
        "balance": format_money(state.balance()),
        "deficit": format_money(state.deficit),
        "blocked": state.blocked,
        "lots": [  # kept in spending order by the core (TenantState.add_lot)
            {
                "lot_id": lot.lot_id,
                "amount": format_money(lot.amount),
                "remaining": format_money(lot.remaining),
                "purchased_at": format_time(lot.purchased_at),
                "expires_at": format_time(lot.expires_at),
            }
            for lot in state.lots
        ],
        "pools": {
            pool: {
                "minutes": state.pool_minutes.get(f"{pool}:{month}", 0),
                "used_s": state.pool_used.get(f"{pool}:{month}", 0),
            }
            for pool in sorted(POOLS)
        },
        "auto_recharge": {
            "enabled": state.ar_enabled,
            "trigger_balance": format_money(state.ar_trigger),
            "recharge_amount": format_money(state.ar_amount),
            "pending_request_id": state.request_id(pending) if pending else None,
            "backoff_until": (
                None if state.backoff_until is None else format_time(state.backoff_until)
            ),
        },
        "contact_email": state.contact_email,
        "language": state.language,
        "clock": format_time(state.clock),
    }
