"""Records a producer put on another partition than their tenant's (SPEC 11, last paragraph).

A tenant's state lives on the partition Kafka's default partitioner (the
Java client's murmur2) gives its id. Other clients place keys differently
(librdkafka's default is crc32, Go's sarama fnv-1a), so a tenant's CDRs and
account events can reach a partition whose owner does not hold its state.
Such a record is *moved*: the owner of the partition it was written to
appends a copy to the tenant's partition of the same topic, with the same
key, value, headers and timestamp, inside the transaction that also commits
its own applied-offsets marker past the original. The copy is rated there
like any other record. Decisions: "Any partitioner: misplaced records are
moved".

- Exactly once: the copy and the marker commit together or not at all; a
  worker that dies before the commit leaves an aborted copy
  (``read_committed`` consumers never see it) and the original unapplied.
- Order: a partition's records are moved in offset order, batch after
  batch, each batch committed before the next is handled, so the copies of
  one source partition reach the tenant's partition in the order they were
  written; with one partitioner all of a tenant's records of a topic come
  from one source partition. The timestamp is kept, so the tenant's
  partition merges them with the other topic by time as it merges any record;
  its aligner releases a copy only once the other topic's older copies have
  been fetched (``aligner.py``: a copy lands after newer records).
- Cost: records already at home cost one dictionary probe each, looped in
  C, and the batch is passed on as it is; only a batch with misplaced (or
  never seen) keys is gone through record by record.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

from rater.stream.batches import RecordBatches

# Header on a moved copy: where the original was written (topic:partition:offset),
# so an operator can trace a copy (and its DLQ record) back to what the producer sent.
MOVED_FROM = "rater-moved-from"

_KEY_HASHES: dict[bytes, int] = {}  # murmur2 is pure Python in aiokafka: ~5 µs a key
# A tenant id is at most 64 characters, 256 bytes of UTF-8: longer keys name no
# tenant (a hostile producer's) and are never remembered.
CACHED_KEY_BYTES = 256


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a key: where the tenant lives."""
    hashed = _KEY_HASHES.get(key)
    if hashed is None:
        hashed = murmur2(key) & 0x7FFFFFFF
        if len(key) <= CACHED_KEY_BYTES:
            if len(_KEY_HASHES) > 1_000_000:
                _KEY_HASHES.clear()
            _KEY_HASHES[key] = hashed
    return hashed % partitions


Move = tuple[Any, Any]  # (the source topic partition, the consumer record)
_KEY_OF = attrgetter("key")


class Placement:
    """Tells a partition's records to rate from those to move to their tenant's partition."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.moved = 0  # records moved and committed by this worker (its stats)
        self._homes: dict[bytes, int] = {}  # key -> its tenant's partition

    def home(self, key: bytes) -> int:
        """The partition of the tenant ``key`` names (remembered: keys repeat)."""
        home = self._homes.get(key)
        if home is None:
            home = partition_of(key, self.partitions)
            if len(key) <= CACHED_KEY_BYTES:
                if len(self._homes) > 1_000_000:
                    self._homes.clear()
                self._homes[key] = home
        return home

    def split(
        self, partition: int, batch: dict[Any, list[Any]]
    ) -> tuple[dict[Any, list[Any]], list[Move]]:
        """The records of ``batch`` to rate here, and those to move, each in offset order.

        A record without a key, or with a key longer than any tenant id, names
        no tenant: it stays and is rejected here, as it would be anywhere (a
        long key is not even hashed: murmur2 is pure Python in aiokafka). The
        batch itself is returned when nothing is misplaced: the common case
        builds one small set per topic partition, in C.
        """
        here = {partition}
        probe = self._homes.get
        for records in batch.values():
            # the set of the records' home partitions, built in C: {partition} when every
            # key is known to live here; an unknown key (None) or no key takes the long way
            if set(map(probe, map(_KEY_OF, records))) != here:
                return self._split(partition, batch)
        return batch, []

    def _split(
        self, partition: int, batch: dict[Any, list[Any]]
    ) -> tuple[dict[Any, list[Any]], list[Move]]:
        """:meth:`split` record by record, learning the keys not seen before."""
        stay: dict[Any, list[Any]] = {}
        moves: list[Move] = []
        for tp, records in batch.items():
            kept = []
            for record in records:
                key = record.key
                # no key, or longer than a tenant id: names no tenant, rejected here
                if key is None or len(key) > CACHED_KEY_BYTES or self.home(key) == partition:
                    kept.append(record)
                else:
                    moves.append((tp, record))
            if kept:
                stay[tp] = kept
        if not moves:
            return batch, []  # only new keys, all living here
        return stay, moves

    async def forward(
        self, producer: AIOKafkaProducer, moves: Iterable[Move]
    ) -> dict[TopicPartition, tuple[int, int]]:
        """Append copies of ``moves`` to their tenants' partitions in ``producer``'s transaction.

        Waits until the broker has them: the caller commits the transaction
        next, and a copy must not be missing from a committed move. Returns
        the offsets written per partition, which the commit's stability check
        covers. On a failure the partition gets a new producer
        (``PartitionRater.failed``), whose InitProducerId aborts this
        transaction, so a retry of the batch cannot move a record twice.
        """
        batches = RecordBatches(producer)
        for tp, record in moves:
            origin = f"{tp.topic}:{tp.partition}:{record.offset}".encode()
            headers = [*(record.headers or ()), (MOVED_FROM, origin)]
            batches.add_record(
                tp.topic,
                self.home(record.key),
                record.key,
                record.value,
                record.timestamp,
                headers,
            )
        spans = await RecordBatches.delivered(await batches.hand_over())
        return {TopicPartition(*where): span for where, span in spans.items()}
