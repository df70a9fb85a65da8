"""What the web views may ask of a worker, as a protocol.

The stream shell implements it over Faust and the committed RocksDB store
(:mod:`rater.stream.worker_status`); the views and metrics only see this, so
``rater.web`` does not import stream internals and tests can stand in a fake.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from rater.core.state import TenantState


class WorkerStatus(Protocol):
    def readiness(self) -> str | None:
        """None when the worker owns partitions, has restored them and consumes; else why not."""

    def failing_partitions(self) -> int:
        """Owned partitions whose batches keep failing (they make the worker not ready)."""

    def owned_partitions(self) -> list[int]:
        """The input partitions this worker owns and has a transactional producer for."""

    def partition_of(self, tenant_id: str) -> int:
        """The partition that holds a tenant's state."""

    def not_serving(self, partition: int) -> str | None:
        """None when this worker may answer from ``partition``'s committed state now;
        else why not."""

    def owner_url(self, partition: int) -> str | None:
        """Where the owner of ``partition`` serves HTTP, per the group's last assignment."""

    def own_url(self) -> str:
        """Where this worker serves HTTP (its canonical URL)."""

    def committed_state(self, partition: int, tenant_id: str) -> TenantState | None:
        """The tenant's last committed state (seen ids looked up in the store), or None."""

    def tenant_states(self, partition: int) -> Iterator[TenantState]:
        """Every committed tenant state of a partition (for the blocked-tenants gauge)."""

    def input_lag(self) -> dict[tuple[str, int], int]:
        """Records not yet applied per owned input partition, keyed by (SPEC topic, partition)."""
