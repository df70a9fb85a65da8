"""The worker's answer to :class:`~rater.observability.status.WorkerStatus`, over Faust.

Readiness and "may I answer for this partition" read Faust's rebalance and
recovery flags: the consumer's flow is active while a table is restored from
its changelog, so flow alone said "ok" long before the state was there
(issue 20). States are read from the committed RocksDB values
(:class:`~rater.stream.store.RocksStates`), never from the rater's
per-partition cache, which holds uncommitted changes mid-batch. Uses
faust-streaming 0.15.3's ``app.rebalancing``, ``tables.recovery.in_recovery``
and ``router.table_metadata`` (pinned).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import orjson
from faust.exceptions import ConsumerNotStarted

from rater.config import Settings
from rater.core.codec import decode_state
from rater.core.state import StoredSeenIds, TenantState
from rater.stream.placement import partition_of
from rater.stream.store import RocksStates, applied_key, seen_prefix


class FaustWorkerStatus:
    """Reads a running worker's Faust app and its committed store; changes nothing."""

    def __init__(
        self,
        app: Any,
        settings: Settings,
        store: RocksStates,
        table: str,
        failing: Callable[[], list[tuple[int, str]]] = list,
    ) -> None:
        self.app = app
        self.failing = failing  # partitions whose batches keep failing, with the error
        self.settings = settings
        self.store = store
        self.table = table
        self.inputs = {settings.topic(name): name for name in ("cdrs", "account-events")}

    def _assignment(self) -> set[Any]:
        """The consumer's assignment; empty before its thread has started (the web
        server answers from the worker's first moments)."""
        try:
            return set(self.app.consumer.assignment())
        except ConsumerNotStarted:
            return set()

    def _assigned(self) -> set[int]:
        return {tp.partition for tp in self._assignment() if tp.topic in self.inputs}

    def _moving(self) -> str | None:
        """Why no partition of this worker can be trusted now, if one is moving."""
        app = self.app
        if app.tables.recovery.in_recovery:  # within a rebalance: the more precise reason
            return "restoring state from the changelog"
        if app.rebalancing:
            return "rebalancing: partitions are being reassigned"
        if not app.consumer.flow_active:
            return "rebalancing: consumption is paused"
        return None

    def readiness(self) -> str | None:
        moving = self._moving()
        if moving is not None:
            return moving
        assigned = self._assigned()
        if not assigned:
            return "no partitions assigned"
        if not assigned <= set(self.app.consumer.transactions.producers):
            return "rebalancing: transactional producers are starting"
        failing = self.failing()
        if failing:  # docs/decisions.md D31 ("Fenced producers")
            return "; ".join(f"partition {p} keeps failing ({error})" for p, error in failing)
        return None

    def failing_partitions(self) -> int:
        return len(self.failing())

    def owned_partitions(self) -> list[int]:
        producers = self.app.consumer.transactions.producers
        return sorted(p for p in self._assigned() if p in producers)

    def partition_of(self, tenant_id: str) -> int:
        return partition_of(tenant_id.encode(), self.settings.partitions)

    def not_serving(self, partition: int) -> str | None:
        moving = self._moving()
        if moving is not None:
            return moving
        if partition not in self._assigned():
            return f"partition {partition} is not owned by this worker"
        if partition not in self.app.consumer.transactions.producers:
            return f"partition {partition} is being taken over"
        return None

    def owner_url(self, partition: int) -> str | None:
        try:
            hosts = self.app.router.table_metadata(self.table)
        except Exception:  # no assignment yet
            return None
        changelog = self.app.tables[self.table].changelog_topic.get_topic_name()
        for url, topics in hosts.items():
            if partition in topics.get(changelog, ()):
                return str(url)
        return None

    def own_url(self) -> str:
        return str(self.app.conf.canonical_url)

    def committed_state(self, partition: int, tenant_id: str) -> TenantState | None:
        raw = self.store.get(partition, tenant_id.encode())
        if raw is None:
            return None
        state = decode_state(raw)
        state.seen = self._seen_ids(partition, tenant_id, cast(dict[str, int], state.seen))
        return state

    def _seen_ids(self, partition: int, tenant_id: str, inline: dict[str, int]) -> StoredSeenIds:
        """The tenant's committed seen ids, looked up in the store (as StateCache does)."""
        prefix = seen_prefix(tenant_id.encode())
        store = self.store

        def lookup(key: str) -> int | None:
            raw = store.get(partition, prefix + key.encode())
            return None if raw is None else int(raw)

        def stored() -> Iterator[tuple[str, int]]:
            for key, value in store.scan(partition, prefix):
                yield key[len(prefix) :].decode(), int(value)

        return StoredSeenIds(lookup, stored, inline)

    def tenant_states(self, partition: int) -> Iterator[TenantState]:
        for key in self.store.tenant_keys(partition):
            raw = self.store.get(partition, key)
            if raw is not None:
                yield decode_state(raw)

    def input_lag(self) -> dict[tuple[str, int], int]:
        """End (last stable) offset minus the next offset the committed state applies."""
        consumer = self.app.consumer
        lag: dict[tuple[str, int], int] = {}
        for partition in self.owned_partitions():
            raw = self.store.get(partition, applied_key(partition))
            applied: dict[str, int] = orjson.loads(raw) if raw else {}
            for tp in self._assignment():
                if tp.topic not in self.inputs or tp.partition != partition:
                    continue
                state = consumer._fetch_state(tp)  # aiokafka 0.14 (pinned), as consumer.py
                end = getattr(state, "lso", None) if state is not None else None
                if end is None or end < 0:
                    continue  # not fetched yet: unknown, not zero
                lag[(self.inputs[tp.topic], partition)] = max(0, end - applied.get(tp.topic, 0))
        return lag
