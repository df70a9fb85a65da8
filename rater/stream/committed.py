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


class CommittedStates(Protocol):
    def get(self, partition: int, key: bytes) -> bytes | None: ...

    def write(self, partition: int, values: dict[bytes, bytes], changelog_offset: int) -> None: ...

    def keys(self, partition: int) -> Iterator[bytes]: ...


class RocksStates:
    """:class:`CommittedStates` in faust's RocksDB store of the tenant table."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.store._db_for_partition(partition).get(key)

    def write(self, partition: int, values: dict[bytes, bytes], changelog_offset: int) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, value in values.items():
            batch.put(key, value)
        batch.put(self.store.offset_key, str(changelog_offset).encode())
        self.store._db_for_partition(partition).write(batch)

    def keys(self, partition: int) -> Iterator[bytes]:
        offset_key = self.store.offset_key
        db = self.store._db_for_partition(partition)
        return (k for k in db.keys() if k != offset_key)  # noqa: SIM118 - an Rdict, not a dict

