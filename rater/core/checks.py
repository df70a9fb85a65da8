"""The checks SPEC 9 makes of a decoded message against its tenant, before any rule runs.

A failed check raises :class:`Rejected` with the code SPEC 9 names; nothing of
the tenant's state has changed by then (the rules call these first).
"""

from __future__ import annotations

from rater.core.clock import MINUTE
from rater.core.errors import CURRENCY_MISMATCH, FUTURE_TIME, TOO_LATE, Rejected
from rater.core.state import ID_WINDOW, TenantState

FUTURE_TOLERANCE = 5 * MINUTE


def check_times(state: TenantState, at: int, now: int, late_allowed: bool = False) -> None:
    if at > now + FUTURE_TOLERANCE:
        raise Rejected(
            FUTURE_TIME, "time is more than 5 minutes ahead of the wall clock", state.tenant_id
        )
    if not late_allowed and at < state.clock - ID_WINDOW:
        raise Rejected(
            TOO_LATE, "time is more than 35 days before the tenant clock", state.tenant_id
        )


def check_currency(state: TenantState, currency: str | None) -> None:
    if currency is not None and currency != state.currency:
        raise Rejected(
            CURRENCY_MISMATCH,
            f"currency {currency} differs from the account's {state.currency}",
            state.tenant_id,
        )
