"""A compact, versioned encoding of tenant state for the tables.

State is a JSON array, not an object: field names are not repeated in every
record, which keeps an idle tenant small, and orjson encodes it fast. The
first element is the format version; :func:`decode_state` reads every
version it has ever written, so a new release reads the previous one's tables.

The last element holds the seen ids when they live in the state (the core
alone). The stream shell stores them as records of their own and writes an
empty object there; a state that still has ids inline hands them over to the
shell's store the next time it changes.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

from rater.core.state import Lot, SeenIds, TenantState

VERSION = 1


def encode_state(state: TenantState) -> bytes:
    return orjson.dumps(
        [
            VERSION,
            state.tenant_id,
            state.currency,
            state.billing_model,
            state.contact_email,
            state.language,
            state.clock,
            state.deficit,
            state.ar_enabled,
            state.ar_trigger,
            state.ar_amount,
            state.pending_request,
            state.topup_seq,
            state.backoff_until,
            state.blocked,
            state.state_seq,
            state.pruned_at,
            [
                [
                    lot.lot_id,
                    lot.amount,
                    lot.remaining,
                    lot.purchased_at,
                    lot.expires_at,
                    lot.warned,
                ]
                for lot in state.lots
            ],
            state.pool_minutes,
            state.pool_used,
            state.seen if isinstance(state.seen, SeenIds) else {},
        ]
    )


def decode_state(data: bytes) -> TenantState:
    fields: list[Any] = orjson.loads(data)
    version = fields[0]
    if version != VERSION:
        raise ValueError(f"tenant state version {version} is not known to this release")
    (
        _,
        tenant_id,
        currency,
        model,
        email,
        language,
        clock,
        deficit,
        ar_enabled,
        ar_trigger,
        ar_amount,
        pending,
        topup_seq,
        backoff_until,
        blocked,
        state_seq,
        pruned_at,
        lots,
        pool_minutes,
        pool_used,
        seen,
    ) = fields
    # interned as decoding does: shared objects are cheaper to reach (messages._shared_int)
    state = TenantState(tenant_id, sys.intern(currency), sys.intern(model), clock)
    state.contact_email = email
    state.language = sys.intern(language)
    state.deficit = deficit
    state.ar_enabled = ar_enabled
    state.ar_trigger = ar_trigger
    state.ar_amount = ar_amount
    state.pending_request = pending
    state.topup_seq = topup_seq
    state.backoff_until = backoff_until
    state.blocked = blocked
    state.state_seq = state_seq
    state.pruned_at = pruned_at
    state.lots = [Lot(*lot) for lot in lots]
    state.pool_minutes = pool_minutes
    state.pool_used = pool_used
    state.seen = SeenIds(seen)
    return state
