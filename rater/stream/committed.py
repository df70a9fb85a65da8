"""Committed tenant states on local disk: one RocksDB (rocksdict) per partition.

Faust's RocksDB store recovers each partition's database from the table's
changelog from the offset stored in it. The rater writes the changelog itself,
inside each batch's transaction, so after the commit it writes the same
records to the partition's database in one atomic write batch together with
the changelog offset they reached. A crash between the commit and this write
leaves the older offset, so recovery replays those records: never ahead of
what is committed, never lost. Uses faust-streaming 0.15.3's
``_db_for_partition`` (pinned); no Rdict reference is ever kept, since one
would hold the database's lock when the partition comes back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from rocksdict import WriteBatch

from rater.compat.faust import partition_db

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
