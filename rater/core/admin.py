"""Admin commands of the operator API (SPEC 11), built and checked like the rater would.

A command becomes one ``account-events`` event. Before it is produced, it is
decoded by the core's own decoder and applied to a throwaway copy of the
tenant's committed state by the core's own rules, so a request the rater
would reject is refused with the same code (SPEC 9) and nothing is produced.
Pure: the caller supplies the state, the wall clock and the event id.
"""

from __future__ import annotations

from typing import Any

import orjson

from rater.core.clock import format_time
from rater.core.engine import apply_event
from rater.core.messages import decode_account_event
from rater.core.state import TenantState

# The event type each command produces, and the body fields it takes (others are
# ignored, as unknown input fields are: SPEC 2). The server sets type, tenant_id, at.
COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "purchases": ("credits_purchased", ("amount", "currency")),
    "auto-recharge": (
        "auto_recharge_configured",
        ("enabled", "trigger_balance", "recharge_amount"),
    ),
    "billing-model": ("billing_model_changed", ("billing_model",)),
    "contact": ("contact_changed", ("contact_email", "language")),
}


def build_event(
    command: str, tenant_id: str, body: dict[str, Any], event_id: str, at: int
) -> dict[str, Any]:
    """The ``account-events`` value a command produces, in the SPEC 4.2 field order."""
    kind, fields = COMMANDS[command]
    event: dict[str, Any] = {
        "type": kind,
        "event_id": event_id,
        "tenant_id": tenant_id,
        "at": format_time(at),
    }
    for name in fields:
        if name in body:
            event[name] = body[name]
    return event


def check_event(event: dict[str, Any], state: TenantState | None, now: int) -> None:
    """Raise :class:`~rater.core.errors.Rejected` if the rater would reject ``event``.

    ``state`` is changed by the check: pass a copy decoded for it, never a
    state in use. A duplicate event id passes, as the rater ignores it.
    """
    decoded = decode_account_event(event["tenant_id"].encode(), orjson.dumps(event))
    apply_event(state, decoded, now)
