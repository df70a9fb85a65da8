"""Rating one partition's batch inside one Kafka transaction.

A batch's outputs, the changelog record of every tenant it changed and the
input offsets are committed together by the partition's transactional
producer, so a ``read_committed`` consumer sees all of a batch or none of it,
and a crash replays exactly the uncommitted batches. Local state is updated
only after the commit, and only once the commit is stable on every partition
the batch wrote (:mod:`rater.stream.stability`); on any failure the
partition's cached states are dropped and reloaded from the last committed
values, its producer is replaced (a fenced producer is never used again) and
the partition is retried after a back-off that grows while it keeps failing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from rater.compat.aiokafka import add_partitions_to_txn
from rater.config import Settings
from rater.core.outputs import Output
from rater.core.processor import Processor
from rater.core.state import StoredSeenIds
from rater.core.topics import LEDGER, OUTPUT_TOPICS, RATED_CDRS
from rater.observability.metrics import RaterMetrics
from rater.stream.batches import RecordBatches
from rater.stream.health import (
    FAILING_AFTER,
    FENCED,
    FENCED_WAIT_S,
    RETRY_FIRST_S,
    RETRY_MAX_S,
    Counters,
    Failing,
    wall_clock_us,
)
from rater.stream.placement import Placement, partition_of
from rater.stream.rating import changed_records, in_time_order, rate
from rater.stream.store import (
    TARIFF_DLQ_KEY,
    CommittedStates,
    StateCache,
    applied_key,
)
from rater.stream.tariff_feed import TariffFeed

log = logging.getLogger(__name__)

# Records of tenants living on another partition are moved there, not rated here (SPEC 11;
# docs/decisions.md D43 ("Any partitioner")); the aligner keeps each tenant's order with
# the copies. Off, they would be rated here against no state (rejected as unknown_account).
MOVE_MISPLACED = True


class Transactions(Protocol):
    """The partitions' transactional producers (:class:`PartitionTransactions`)."""

    @property
    def producers(self) -> dict[int, AIOKafkaProducer]: ...

    async def renew(self, partition: int) -> bool: ...

    async def drop(self, partition: int) -> None: ...

    async def committed(
        self, partition: int, tp: TopicPartition, span: tuple[int, int]
    ) -> bool | None: ...

    async def settle(
        self, partition: int, written: Mapping[TopicPartition, tuple[int, int]]
    ) -> None: ...


# Called at each named step of a batch (PartitionRater.checkpoint): None in production.
StepHook = Callable[[str, AIOKafkaProducer], Awaitable[None]]


class PartitionRater:
    """Applies input batches for the partitions this worker owns."""

    def __init__(
        self,
        settings: Settings,
        tariffs: TariffFeed,
        table: CommittedStates,
        changelog_topic: str,
        transactions: Transactions,
        clock: Callable[[], int] = wall_clock_us,
        on_step: StepHook | None = None,
    ) -> None:
        self.settings = settings
        self.on_step = on_step
        self.tariffs = tariffs
        self.table = table
        self.changelog_topic = changelog_topic
        self.transactions = transactions
        self.clock = clock
        self.failing: dict[int, Failing] = {}
        # A batch whose commit raised and whose outcome is not known yet (_committed_anyway).
        self._in_doubt: dict[int, tuple[Any, tuple[int, int], dict[bytes, bytes | None], Any]] = {}
        self.caches: dict[int, StateCache] = {}
        self.cdrs_topic = settings.topic("cdrs")
        self.events_topic = settings.topic("account-events")
        self.topic_names = {name: settings.topic(name) for name in OUTPUT_TOPICS}
        self.counters = Counters()
        self.metrics = RaterMetrics(settings.topic_prefix)  # SPEC 11: committed work only
        self.placement = Placement(settings.partitions)
        self._last_written: dict[int, set[TopicPartition]] = {}  # see _open_partitions

    async def checkpoint(self, point: str, producer: AIOKafkaProducer) -> None:
        """A named step of :meth:`handle`, handed to the injected :data:`StepHook` if any.

        The crash tests (tests/faults/crashing_worker.py) kill the worker at each.
        ``rated``: batch applied in memory, nothing sent. ``state_written``:
        changelog records handed to the producer, outputs not yet. ``sent``:
        everything sent, not committed. ``committed``: committed, local table
        not yet updated. ``stored``: local table updated, the input offsets
        not yet committed to the consumer group.
        """
        if self.on_step is not None:
            await self.on_step(point, producer)

    def forget(self, partition: int | None = None) -> None:
        """Drop cached states (all, or one partition's): they may hold uncommitted changes."""
        if partition is None:
            self.caches.clear()
        else:
            self.caches.pop(partition, None)

    def producer_for(self, partition: int) -> AIOKafkaProducer:
        return self.transactions.producers[partition]

    def failing_partitions(self) -> list[tuple[int, str]]:
        """Partitions whose batches keep failing, with how often and the last error."""
        return [
            (p, f"{f.count} batches in a row, last {f.error}")
            for p, f in sorted(self.failing.items())
            if f.count >= FAILING_AFTER
        ]

    def not_ready_reason(self) -> str | None:
        """Why the worker should not be sent traffic: a partition that keeps failing."""
        failing = self.failing_partitions()
        if not failing:
            return None
        return "; ".join(f"partition {p} failed {why}" for p, why in failing)

    async def _wait_retry(self, partition: int) -> None:
        failing = self.failing.get(partition)
        if failing is not None:
            delay = failing.retry_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def failed(self, partition: int, exc: BaseException) -> None:
        """After a failed batch: drop the cache and the producer, back off.

        The new producer is started by the partition's next batch, after the
        back-off (:meth:`_producer`): started at once, a worker that was
        frozen and has not yet heard that it lost the partition would fence
        the producer of the worker that took it over.
        """
        self.forget(partition)
        self.counters.failed_batches += 1
        self.metrics.failed_batches.inc()
        known = self.failing.get(partition)
        count = 1 if known is None else known.count + 1
        delay = min(RETRY_FIRST_S * 2 ** (count - 1), RETRY_MAX_S)
        if isinstance(exc, FENCED):
            delay = max(delay, FENCED_WAIT_S)
        self.failing[partition] = Failing(
            count,
            wall_clock_us() if known is None else known.since_us,
            time.monotonic() + delay,
            f"{type(exc).__name__}: {exc}"[:200],
        )
        await self.transactions.drop(partition)

    async def _producer(self, partition: int) -> AIOKafkaProducer:
        """The partition's producer; a new one after a failure, if the partition is still ours."""
        producer = self.transactions.producers.get(partition)
        if producer is None:
            if not await self.transactions.renew(partition):
                raise RuntimeError(f"partition {partition} is not this worker's any more")
            self.counters.renewed_producers += 1
            producer = self.transactions.producers[partition]
        return producer

    def _processor(self, partition: int) -> Processor:
        cache = self.caches.get(partition)
        if cache is None:
            cache = self.caches[partition] = StateCache(self.table, partition)
        return Processor(self.tariffs.index, cache)

    async def handle(
        self, partition: int, batch: dict[Any, list[Any]]
    ) -> dict[TopicPartition, int]:
        """Rate and commit a batch; the next input offsets to commit to the consumer group.

        A partition that failed waits out its back-off first; a failure gets it a
        new producer (:meth:`failed`) before the consumer rewinds it.
        """
        await self._wait_retry(partition)
        try:
            offsets = await self._handle(partition, batch)
        except Exception as exc:
            await self.failed(partition, exc)
            raise
        self.failing.pop(partition, None)
        return offsets

    async def _handle(
        self, partition: int, batch: dict[Any, list[Any]]
    ) -> dict[TopicPartition, int]:
        """:meth:`handle` without the failure handling.

        The offsets are not part of the transaction: the applied-offsets marker
        committed with the state is what decides which records are skipped, so
        the group's offsets only say where fetching may start. Committing them
        in the transaction cost two more sequential round trips per batch
        (AddOffsetsToTxn, TxnOffsetCommit): a third of the commit's latency.
        """
        started = time.perf_counter()
        if partition in self._in_doubt:
            await self._resolve_in_doubt(partition)  # before anything is replayed
        producer = await self._producer(partition)
        marker_key = applied_key(partition)
        raw_marker = self.table.get(partition, marker_key)
        applied: dict[str, int] = orjson.loads(raw_marker) if raw_marker else {}
        fetched = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        fresh = {}
        for tp, records in batch.items():
            next_offset, kept = applied.get(tp.topic, 0), []
            for record in records:  # skips applied records and any offset delivered twice
                if record.offset >= next_offset:
                    kept.append(record)
                    next_offset = record.offset + 1
            fresh[tp] = kept
        batch = {tp: records for tp, records in fresh.items() if records}
        if not batch:
            return self._group_offsets(fetched, applied)  # all applied: the group's offsets lag
        # records of tenants living elsewhere are moved there, not rated (placement.py)
        if MOVE_MISPLACED:
            to_rate, moving = self.placement.split(partition, batch)
        else:
            to_rate, moving = batch, []
        self._open_partitions(producer, partition, to_rate)
        poisoned: dict[tuple[str, int], str] = {}
        tariffs_checked = False
        while True:
            processor = self._processor(partition)
            records = in_time_order(to_rate, self.events_topic)
            emitted, crashed, no_tariff = rate(
                processor, records, poisoned, self.clock(), self.cdrs_topic
            )
            if crashed is None and not (no_tariff and not tariffs_checked):
                break
            # Replay the batch from committed state: without the message that crashed, or
            # once the tariff index has every row that existed when the batch was rated.
            self.forget(partition)
            if crashed is not None:
                poisoned[crashed[0]] = crashed[1]
            else:
                await self.tariffs.catch_up()
                tariffs_checked = True
        await self.checkpoint("rated", producer)
        moved: dict[TopicPartition, tuple[int, int]] = {}
        if moving:  # in this transaction, before the marker that passes the originals
            try:
                moved = await self.placement.forward(producer, moving)
            except BaseException:
                self.forget(partition)  # the rated states were not committed
                raise
        for tp, records in batch.items():
            applied[tp.topic] = records[-1].offset + 1
        extra = {marker_key: orjson.dumps(applied)}
        await self._commit(partition, producer, processor, emitted, extra, moved)
        self.counters.committed(sum(len(records) for records in batch.values()), emitted)
        self.metrics.inputs_committed(partition, to_rate, time.perf_counter() - started)
        self.placement.moved += len(moving)
        await self.checkpoint("stored", producer)
        return self._group_offsets(fetched, applied)

    def _open_partitions(
        self, producer: AIOKafkaProducer, partition: int, batch: dict[Any, list[Any]]
    ) -> None:
        """Add the partitions the batch will write (or very likely will) to the transaction now.

        aiokafka adds a partition (AddPartitionsToTxn, a round trip) when the
        first record for it is sent, after the rating; asked before it, the
        round trip overlaps the rating, and the commit after it needs two round
        trips (Produce, EndTxn) instead of three. Every batch writes the
        changelog (its applied-offsets marker), and a batch with CDRs their
        rated records and ledger entries. The partitions the partition's last
        batch wrote are added too: a batch that writes notifications, top-up
        requests or service states usually has a successor that does, and a
        partition added after the rating costs one more round trip before its
        records can be sent. Uses aiokafka 0.14's transaction manager
        (pinned); a partition added but not written only gets an empty commit
        marker.
        """
        wanted = {TopicPartition(self.changelog_topic, partition)}
        if any(tp.topic == self.cdrs_topic for tp in batch):
            wanted.update(
                TopicPartition(self.topic_names[topic], partition) for topic in (RATED_CDRS, LEDGER)
            )
        wanted.update(self._last_written.get(partition, ()))
        add_partitions_to_txn(producer, wanted)

    @staticmethod
    def _group_offsets(
        fetched: dict[Any, int], applied: dict[str, int]
    ) -> dict[TopicPartition, int]:
        """Where fetching may start next time: past what was fetched and what is applied."""
        return {
            TopicPartition(tp.topic, tp.partition): max(offset, applied.get(tp.topic, 0))
            for tp, offset in fetched.items()
        }

    async def sweep(self, partition: int, now: int | None = None) -> int:
        """Expire the lots of this partition's idle tenants (SPEC 6.1), in one transaction.

        Runs under the consumer's batch lock, so it is ordered with the
        partition's batches like one more batch: the state it starts from is
        committed and its outputs and state commit together.
        """
        now = self.clock() if now is None else now
        producer = self.producer_for(partition)
        processor = self._processor(partition)
        emitted: list[Output] = []
        count = self.settings.partitions
        for key in list(self.table.tenant_keys(partition)):
            if partition_of(key, count) != partition:
                continue  # defensively: a tenant of another partition
            emitted.extend(processor.sweep(key.decode(), now))
        if emitted or processor.dirty:
            try:
                await self._commit(partition, producer, processor, emitted, {})
            except Exception as exc:
                await self.failed(partition, exc)
                raise
            self.counters.committed(0, emitted)
        return len(emitted)

    async def _commit(
        self,
        partition: int,
        producer: AIOKafkaProducer,
        processor: Processor,
        emitted: list[Output],
        extra: dict[bytes, bytes],
        moved: dict[TopicPartition, tuple[int, int]] | None = None,
    ) -> None:
        """Send outputs and changed states, commit; then update the table."""
        encoded, journals = changed_records(processor)
        encoded.update(extra)
        tariff_dlq = self._tariff_rejections(partition) if partition == 0 else None
        if tariff_dlq is not None:
            encoded[TARIFF_DLQ_KEY] = tariff_dlq[1]
        ending = False
        written: dict[TopicPartition, tuple[int, int]] = {}
        try:
            written = await self._send(producer, partition, emitted, encoded, tariff_dlq)
            written.update(moved or {})  # the moved copies must be stable too
            await self.checkpoint("sent", producer)
            ending = True
            await producer.commit_transaction()
            await self.checkpoint("committed", producer)
            await self.transactions.settle(partition, written)
            await producer.begin_transaction()
        except Exception as exc:
            self.forget(partition)
            if not ending or isinstance(exc, FENCED):  # fenced: another producer aborted it
                raise
            if not await self._committed_anyway(partition, written, exc, encoded, journals):
                raise
        except BaseException:
            self.forget(partition)
            raise
        changelog = written.get(TopicPartition(self.changelog_topic, partition))
        if changelog is not None:
            self.table.write(partition, encoded, changelog[1])
        for journal in journals:
            journal.stored()
        self.metrics.outputs_committed(
            partition, emitted if tariff_dlq is None else emitted + tariff_dlq[0]
        )

    async def _committed_anyway(
        self,
        partition: int,
        written: dict[TopicPartition, tuple[int, int]],
        exc: Exception,
        encoded: dict[bytes, bytes | None],
        journals: list[StoredSeenIds],
    ) -> bool:
        """Whether a batch whose commit raised was committed all the same.

        aiokafka can fail a commit the coordinator did record (its sender dies
        on a connection closed while it looks the coordinator up again); a
        replay would then double the batch (docs/decisions.md D31 ("Fenced
        producers")). The changelog partition is in every batch, so its
        records say which it was. An outcome that cannot be told yet keeps
        the partition failing, and asks again before its next batch
        (:meth:`_resolve_in_doubt`), rather than risk the replay.
        """
        tp = TopicPartition(self.changelog_topic, partition)
        span = written.get(tp)
        if span is None:
            return False
        self._in_doubt[partition] = (tp, span, encoded, journals)
        try:
            committed = await self._resolve_in_doubt(partition)
        except Exception as unknown:
            raise RuntimeError(
                f"partition {partition}: commit failed ({exc!r}) and its outcome is not "
                f"known yet ({unknown!r}); not replaying it"
            ) from exc
        if committed:
            log.warning("partition %d: commit reported %r but was committed", partition, exc)
        return committed

    async def _resolve_in_doubt(self, partition: int) -> bool:
        """Settle a batch whose commit failed: True if it was committed (and is now stored)."""
        tp, span, encoded, journals = self._in_doubt[partition]
        committed = await self.transactions.committed(partition, tp, span)
        del self._in_doubt[partition]
        if committed:  # as after a commit that answered: the table, then the seen ids
            self.table.write(partition, encoded, span[1])
            for journal in journals:
                journal.stored()
        return bool(committed)

    def _tariff_rejections(self, partition: int) -> tuple[list[Output], bytes] | None:
        """Bad tariff rows not yet published, with the new published-up-to marker."""
        raw = self.table.get(partition, TARIFF_DLQ_KEY)
        published: dict[str, int] = orjson.loads(raw) if raw else {}
        fresh = [
            (p, offset, record)
            for p, offset, record in self.tariffs.rejected
            if offset >= published.get(str(p), 0)
        ]
        if not fresh:
            return None
        for p, offset, _ in fresh:
            published[str(p)] = max(published.get(str(p), 0), offset + 1)
        return [record for _, _, record in fresh], orjson.dumps(published)

    async def _send(
        self,
        producer: AIOKafkaProducer,
        partition: int,
        emitted: list[Output],
        encoded: dict[bytes, bytes | None],
        tariff_dlq: tuple[list[Output], bytes] | None,
    ) -> dict[TopicPartition, tuple[int, int]]:
        """Send the states, then the outputs; the first and last offset written per partition.

        Both are handed to the producer before either is awaited, so they
        usually go in one produce request: one round trip, not two. Outputs
        are keyed by tenant id and go where Kafka's default partitioner puts
        the key (the partition's own number for co-partitioned topics).
        """
        batches = RecordBatches(producer)
        changelog = self.changelog_topic
        for key, value in encoded.items():
            batches.add(changelog, partition, key, value)
        pending = await batches.hand_over()
        await self.checkpoint("state_written", producer)
        names, count, dumps = self.topic_names, self.settings.partitions, orjson.dumps
        if tariff_dlq is not None:
            emitted = emitted + tariff_dlq[0]
        for topic, out_key, out_value in emitted:
            where = partition if out_key is None else partition_of(out_key, count)
            batches.add(names[topic], where, out_key, dumps(out_value))
        outputs = await batches.hand_over()
        self._last_written[partition] = {TopicPartition(*where) for where, _, _ in outputs}
        pending += outputs
        spans = await RecordBatches.delivered(pending)
        return {TopicPartition(*where): span for where, span in spans.items()}
