"""From raw Kafka messages to outputs: the one entry point the shell calls.

It decodes, applies and turns every rejection into a ``rater-dlq`` record,
so the shell never needs to know a billing rule. It keeps the states of the
tenants it serves in a mapping the shell provides, and notes which tenants
changed so the shell writes each of them once per batch.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from rater.core import dlq_record
from rater.core.engine import apply_cdr, apply_event, sweep
from rater.core.errors import Rejected
from rater.core.messages import decode_account_event, decode_cdr, decode_tariff, tombstone_id
from rater.core.outputs import Output
from rater.core.state import TenantState
from rater.core.tariffs import TariffIndex


class Processor:
    """Applies messages to tenant states; never raises for bad input."""

    def __init__(
        self, tariffs: TariffIndex, states: MutableMapping[str, TenantState] | None = None
    ) -> None:
        self.tariffs = tariffs
        self.states: MutableMapping[str, TenantState] = states if states is not None else {}
        self.dirty: set[str] = set()

    def cdr(
        self,
        key: bytes | None,
        value: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        now: int,
    ) -> list[Output]:
        try:
            cdr = decode_cdr(key, value)
            state = self.states.get(cdr.tenant_id)
            emitted = apply_cdr(state, cdr, self.tariffs, now)
        except Rejected as rejected:
            return [_dlq(rejected, topic, partition, offset, key, value)]
        if emitted and state is not None:
            # The state's own id string, not the one just decoded: it is the
            # set's member already, so adding it again compares no characters
            # of a string elsewhere in memory (a cache miss per CDR).
            self.dirty.add(state.tenant_id)
        return emitted

    def account_event(
        self,
        key: bytes | None,
        value: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        now: int,
    ) -> list[Output]:
        try:
            event = decode_account_event(key, value)
            state = self.states.get(event.tenant_id)
            new_state, emitted = apply_event(state, event, now)
        except Rejected as rejected:
            return [_dlq(rejected, topic, partition, offset, key, value)]
        if new_state is not None:
            self.states[event.tenant_id] = new_state
            self.dirty.add(event.tenant_id)
        return emitted

    def tariff(
        self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int
    ) -> list[Output]:
        """Apply a tariff row or tombstone; a bad row yields its DLQ record.

        A tombstone deletes the row its key names; one whose key cannot be a
        tariff id (none, empty, not UTF-8, too long) names no row and is
        rejected, not dropped silently (SPEC 9).
        """
        try:
            if value is None:
                self.tariffs.delete(tombstone_id(key))
                return []
            row = decode_tariff(key, value)
        except Rejected as rejected:
            return [_dlq(rejected, topic, partition, offset, key, value)]
        self.tariffs.put(row)
        return []

    def sweep(self, tenant_id: str, now: int) -> list[Output]:
        state = self.states.get(tenant_id)
        if state is None:
            return []
        emitted = sweep(state, now)
        if emitted or state.clock == now:
            self.dirty.add(tenant_id)
        return emitted

    def take_dirty(self) -> set[str]:
        dirty, self.dirty = self.dirty, set()
        return dirty


def _dlq(
    rejected: Rejected,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
) -> Output:
    return dlq_record.record(
        topic, partition, offset, key, value, rejected.code, rejected.message, rejected.tenant_id
    )
