"""Committed tenant states on local disk, and the whole key layout of the tenant table.

One RocksDB (rocksdict) per partition.

Faust's RocksDB store recovers each partition's database from the table's
changelog from the offset stored in it. The rater writes the changelog itself,
inside each batch's transaction, so after the commit it writes the same
records to the partition's database in one atomic write batch together with
the changelog offset they reached. A crash between the commit and this write
leaves the older offset, so recovery replays those records: never ahead of
what is committed, never lost. Reaches each partition's database through
:func:`rater.compat.faust.partition_db`; no Rdict reference is ever kept, since one
would hold the database's lock when the partition comes back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from rocksdict import WriteBatch

from rater.compat.faust import partition_db
from rater.core.codec import decode_state
from rater.core.state import StoredSeenIds, TenantState

SEEN_IDS = b"\xff"  # first byte of seen-id keys: never in UTF-8, so after every tenant key


def seen_prefix(tenant: bytes) -> bytes:
    """Where a tenant's seen ids are stored: the marker byte, the tenant's length, the tenant.

    One record per id (``<prefix>c:<cdr_id>`` -> event time), so a batch writes
    only the ids it applied and pruning deletes them one by one (tombstones);
    the length keeps one tenant's keys from running into another's.
    """
    return SEEN_IDS + len(tenant).to_bytes(2, "big") + tenant


def tenant_of_seen_key(key: bytes) -> bytes:
    """The tenant a seen-id key belongs to (the inverse of :func:`seen_prefix`)."""
    return key[3 : 3 + int.from_bytes(key[1:3], "big")]


class CommittedStates(Protocol):
    def get(self, partition: int, key: bytes) -> bytes | None: ...

    def write(
        self, partition: int, values: dict[bytes, bytes | None], changelog_offset: int
    ) -> None: ...

    def tenant_keys(self, partition: int) -> Iterator[bytes]: ...

    def scan(self, partition: int, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...


class RocksStates:
    """:class:`CommittedStates` in faust's RocksDB store of the tenant table."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def get(self, partition: int, key: bytes) -> bytes | None:
        return partition_db(self.store, partition).get(key)

    def write(
        self, partition: int, values: dict[bytes, bytes | None], changelog_offset: int
    ) -> None:
        """Store the committed values (None deletes) and the changelog offset, atomically."""
        batch = WriteBatch(raw_mode=True)
        for key, value in values.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(self.store.offset_key, str(changelog_offset).encode())
        partition_db(self.store, partition).write(batch)

    def tenant_keys(self, partition: int) -> Iterator[bytes]:
        """Tenant ids with a state: not the rater's reserved keys, not seen ids."""
        offset_key = self.store.offset_key
        for key in partition_db(self.store, partition).keys():  # noqa: SIM118 - an Rdict
            if key.startswith(SEEN_IDS):
                return  # keys are sorted: only seen ids from here on
            if key != offset_key and not key.startswith(b"\x00"):
                yield key

    def scan(self, partition: int, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every stored key beginning with ``prefix``, in key order, with its value."""
        db = partition_db(self.store, partition)
        for key, value in db.items(from_key=prefix):
            if not key.startswith(prefix):
                return
            yield key, value


# Where the owner of partition 0 remembers which bad tariff rows it has published.
# Longer than any tenant id can be in UTF-8 (64 characters), so it never collides.
TARIFF_DLQ_KEY = b"\x00rater:tariff-dlq-published:" + b"\x00" * 300


def applied_key(partition: int) -> bytes:
    """Where a partition's next input offsets are kept, committed with its state.

    Consumer-group offsets committed in a transaction become readable a moment
    after the commit returns, so a new owner can be handed older ones; this
    marker lets it skip what the state already holds, DLQ'd messages included.
    """
    return b"\x00rater:applied-offsets:%d:" % partition + b"\x00" * 300


class StateCache(dict[str, TenantState]):
    """Decoded tenant states of one partition, loaded from the table on first use.

    Every state in it looks its seen ids up in the table (:class:`StoredSeenIds`).
    """

    def __init__(self, committed: CommittedStates, partition: int) -> None:
        super().__init__()
        self._committed = committed
        self._partition = partition

    def get(self, tenant_id: str, default: Any = None) -> Any:
        state = dict.get(self, tenant_id)
        if state is None:
            raw = self._committed.get(self._partition, tenant_id.encode())
            if raw is None:
                return default
            state = decode_state(raw)
            self[tenant_id] = state
        return state

    def __setitem__(self, tenant_id: str, state: TenantState) -> None:
        if not isinstance(state.seen, StoredSeenIds):
            state.seen = self._stored_ids(tenant_id, state.seen)
        dict.__setitem__(self, tenant_id, state)

    def _stored_ids(self, tenant_id: str, inline: dict[str, int]) -> StoredSeenIds:
        """The tenant's ids in the table; ids still inline are written with its next change."""
        prefix = seen_prefix(tenant_id.encode())
        get, scan, partition = self._committed.get, self._committed.scan, self._partition

        def lookup(key: str) -> int | None:
            raw = get(partition, prefix + key.encode())
            return None if raw is None else int(raw)

        def stored() -> Iterator[tuple[str, int]]:
            start = len(prefix)
            for key, value in scan(partition, prefix):
                yield key[start:].decode(), int(value)

        return StoredSeenIds(lookup, stored, inline)
