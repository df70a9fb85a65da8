"""A Faust consumer that hands whole per-partition batches to the rater.

Faust's drain loop costs two tasks and a lock per message, which caps a plain
agent near 4,000 events/s (ENGINEERING.md). This subclass keeps Faust's
fetching, flow control and recovery, but passes each fetched batch of the
rater's input topics to one handler call per partition. Other topics (table
changelogs during recovery) still take Faust's per-message path.

Overrides code of faust-streaming 0.15.3 (pinned); covered by the
integration tests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from rocksdict import WriteBatch

from rater.compat.aiokafka import fetch_state, set_fetch_max_wait
from rater.compat.faust import (
    active_partitions,
    aiokafka_consumer,
    changelog_table,
    getmany,
    is_stopped,
    partition_db,
    to_message,
)
from rater.stream.aligner import Aligner

log = logging.getLogger(__name__)

# Rates and commits one partition's batch; returns the group offsets to commit after it.
BatchHandler = Callable[[int, dict[Any, list[Any]]], Awaitable[dict[TopicPartition, int]]]
FETCH_MAX_WAIT_MS = 10  # longest an empty fetch waits at the broker (Faust fixes 1,500)
HOLD_POLL_S = FETCH_MAX_WAIT_MS / 1000  # how often held records look for a newer fetch answer
DRAIN_HELD_BELOW = 1000  # a partition holding fewer records is still drained (_next_records)
OFFSETS_AT_STOP_S = 5.0  # longest a graceful stop waits for the last group offsets
HOLD_WARNING_S = 30.0  # a hold this long means an input partition is not being fetched
# More takes of fetched records before a batch is applied, while each brings new
# ones. A record waits in the aligner for a later fetch answer (see
# _arrival_stamp), and aiokafka sends no fetch while records wait in its
# buffer. So the first take gets what came just after the last apply, the
# second what the broker gathered while it ran, and the third's answer covers
# the second. Applying after one take held most records a whole batch cycle
# longer (docs/benchmark-notes.md, session 9).
COVER_POLLS = 2


STABLE_WAIT_S = 10.0  # longest recovery waits for the stable offsets to pass our own writes
STABLE_POLL_S = 0.02


async def stable_ends(
    ask: Callable[[list[Any]], Awaitable[Mapping[Any, int]]],
    partitions: list[Any],
    written: Callable[[Any], int],
    wait_s: float = STABLE_WAIT_S,
) -> dict[Any, int]:
    """End offsets (``ask``) once each is past ``written(tp)``, or as they are after ``wait_s``.

    A worker commits a batch, writes its local table with the changelog
    offset reached, and may then be asked for recovery highwaters before the
    coordinator has written that transaction's markers: the stable offset is
    still the transaction's first. Faust took the local table for one ahead
    of its topic and crashed the worker (ConsistencyError, seen once in about
    20 takeover runs). The local table only ever holds committed records, so
    the stable offset is bound to pass it: wait for that, a few ms; a table
    still ahead after ``wait_s`` is a real inconsistency, and Faust says so.
    """
    ends = dict(await ask(partitions))
    deadline = time.monotonic() + wait_s
    while True:
        late = [tp for tp in partitions if ends.get(tp) is not None and ends[tp] <= written(tp)]
        if not late or time.monotonic() >= deadline:
            return ends
        await asyncio.sleep(STABLE_POLL_S)  # markers are written within milliseconds
        ends.update(await ask(late))


class StableOffsetsConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Asks the broker for the last stable offsets instead of the fetcher's cache.

    In exactly_once mode faust-streaming 0.15.3 takes recovery's highwater from
    ``last_stable_offset()``, which is None until the partition's first fetch
    has answered; recovery then reads it as -1 and skips the changelog, and
    the worker starts with an empty table (seen in 2 of 11 restarts). A
    ``read_committed`` consumer's ListOffsets request returns the LSO at once.
    It also shortens the fetch wait (see :meth:`_create_worker_consumer`).
    """

    async def _highwaters(self, partitions: Any) -> Any:
        return await self._ensure_consumer().end_offsets(list(partitions))

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        """Stable offsets, once past what this worker's own table holds (:func:`stable_ends`).

        A table still ahead after the wait holds records that are not committed
        (a hanging transaction that was aborted, or a crash in the middle of
        one): its partition is emptied and rebuilt from the changelog instead
        of failing recovery with Faust's ConsistencyError on every start.
        """

        async def ask(tps: list[TP]) -> Mapping[TP, int]:
            return await self.call_thread(self._highwaters, tps)

        ends = await stable_ends(ask, list(partitions), self._persisted)
        for tp in partitions:
            end, persisted = ends.get(tp), self._persisted(tp)
            if end is not None and persisted >= end:
                self._rebuild(tp, end, persisted)
        return ends

    def _rebuild(self, tp: TP, end: int, persisted: int) -> None:
        """Empty a partition's local table so recovery reads its whole changelog."""
        table = changelog_table(self.app, tp.topic)
        db = partition_db(table.data, tp.partition)
        batch = WriteBatch(raw_mode=True)
        for key in db.keys():  # noqa: SIM118 - an Rdict
            batch.delete(key)
        db.write(batch)
        recovery = cast(Any, self.app.tables).recovery  # TableManager, typed as its protocol
        for offsets in (recovery.active_offsets, recovery.standby_offsets):
            if tp in offsets:
                offsets[tp] = None  # read from the changelog's start (Recovery._build_offsets)
        log.warning(
            "local table of %s-%d was ahead of the changelog's stable offset (%d >= %d): "
            "rebuilding it from the changelog",
            tp.topic,
            tp.partition,
            persisted,
            end,
        )

    def _persisted(self, tp: TP) -> int:
        """The last changelog offset in the local table (-1 if none or not a changelog)."""
        table = changelog_table(self.app, tp.topic)
        offset = table.persisted_offset(tp) if table is not None else None
        return -1 if offset is None else offset

    def _create_worker_consumer(self, transport: Any) -> Any:
        """Faust's consumer, but the broker holds an empty fetch for 10 ms, not 1.5 s.

        aiokafka keeps one fetch in flight per broker and leaves out partitions
        that still have records buffered, so a fetch for the idle input topic
        alone could hold the next CDRs back for Faust's fixed 1,500 ms: that
        was the 1.5 s median latency the benchmark measured at half load.
        """
        consumer = super()._create_worker_consumer(transport)
        set_fetch_max_wait(consumer, FETCH_MAX_WAIT_MS)
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    hot_topics: frozenset[str] = frozenset()
    handler: BatchHandler | None = None
    _batch_lock: asyncio.Lock | None = None
    _aligner: Aligner | None = None
    _aligned_generation: int = -1
    _offsets_due: dict[TopicPartition, int]  # group offsets not yet committed
    _offsets_task: asyncio.Task[None] | None = None

    def batch_lock(self) -> asyncio.Lock:
        """Held while a batch is applied, so a revoke waits for its commit or abort."""
        if self._batch_lock is None:
            self._batch_lock = asyncio.Lock()
        return self._batch_lock

    def _new_consumer_thread(self) -> StableOffsetsConsumerThread:
        return StableOffsetsConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def aligner(self) -> Aligner:
        if self._aligner is None:
            self._aligner = Aligner()
        return self._aligner

    async def _drain_messages(self, fetcher: Any) -> None:
        aligner = self.aligner()
        self._offsets_due = {}
        topics = sorted(self.hot_topics)
        holding: set[int] = set()
        warned_at = 0.0
        polls = 0  # since the last apply
        while not (is_stopped(self) or is_stopped(fetcher)):
            records, active = await self._next_records(HOLD_POLL_S if holding else 1.0)
            if self.should_stop:
                continue
            if not self.flow_active:
                self._rewind(records)
                holding.clear()
                polls = 0
                await self.perform_seek()
                continue
            generation = self.app.consumer_generation_id
            if generation != self._aligned_generation:
                self._rewind({})  # a rebalance: what was held is fetched again
                holding.clear()
                polls = 0
                self._offsets_due = {}  # older than what a partition's other owner committed
                self._aligned_generation = generation
            now = time.monotonic()
            fresh = await self._take(records or {}, active, now)
            holding.update(tp.partition for tp in fresh)
            polls += 1
            if fresh and polls <= COVER_POLLS:
                continue  # the next answer covers these records: see COVER_POLLS
            polls = 0
            batches: dict[int, dict[Any, list[Any]]] = {}
            for partition in sorted(holding):
                tps = [TP(topic, partition) for topic in topics]
                released = aligner.release(tps, self._caught_up, now)
                if released:
                    batches[partition] = released
                if not any(aligner.held(tp) for tp in tps):
                    holding.discard(partition)
            if batches:
                await self._apply(batches, generation)
            since = aligner.holding_since()
            if since is not None and now - since > HOLD_WARNING_S and now - warned_at > 10:
                warned_at = now
                log.warning("input records held %.0fs waiting for the other topic", now - since)

    async def _take(self, records: Mapping[Any, list[Any]], active: Any, now: float) -> list[Any]:
        """Hand fetched records to the aligner (input topics) or to Faust (the others);
        the input partitions that brought records."""
        aligner, fresh = self.aligner(), []
        for tp, tp_records in records.items():
            if tp.topic not in self.hot_topics:
                for record in tp_records:
                    await self.callback(to_message(self, tp, record))
            elif active is None or tp in active:
                aligner.add(tp, tp_records, now, self._arrival_stamp(tp))
                fresh.append(tp)
            else:
                self._rewind({tp: tp_records}, keep_held=True)
        return fresh

    def _rewind(self, dropped: Any, keep_held: bool = False) -> None:
        """Fetch again what is dropped unapplied: ``dropped`` records and (unless
        ``keep_held``) everything the aligner holds, which is then forgotten.

        A rebalance gives positions from committed offsets, but not before
        Faust's generation id and flow flags say so: records fetched under the
        new assignment can still meet the old generation here. Faust's own
        ``perform_seek`` moves only partitions that have a committed offset, so
        without this a partition's first records were skipped for good (seen
        in the takeover test: a tenant's ``account_opened`` never applied).
        """
        first: dict[Any, int] = {}
        for tp, records in (dropped or {}).items():
            if tp.topic in self.hot_topics and records:
                first[tp] = records[0].offset
        if not keep_held:
            aligner = self.aligner()
            for tp, offset in aligner.first_offsets().items():
                first[tp] = min(offset, first.get(tp, offset))
            aligner.clear()
        if not first:
            return
        consumer = aiokafka_consumer(self)
        for tp, offset in first.items():
            try:
                consumer.seek(TopicPartition(tp.topic, tp.partition), offset)
            except Exception:  # not ours any more: its next owner starts from committed
                continue

    async def _next_records(self, timeout: float) -> tuple[Any, Any]:
        """Faust's ``_wait_next_records``, not from partitions the aligner holds many records of.

        aiokafka hands out one partition's fetched records until they run out,
        so an input partition with a large fetch would starve the other topic's
        partition whose records the held ones wait for. A partition holding
        only a few is still drained: aiokafka does not fetch a partition again
        while records of it are buffered, so leaving them there delayed every
        newer record of it by a batch cycle (the latency phase's records were
        about 140 ms old when handed over, with 14 ms between hand-overs).
        """
        if not self.flow_active:
            await self.wait(self.can_resume_flow)  # type: ignore[arg-type]  # mode accepts it
        active = active_partitions(self)
        if not active:
            await self.sleep(1)
            return {}, active
        aligner = self.aligner()
        # a partition a held moved copy waits on is drained however much it holds: the
        # copy waits for it to be caught up (Aligner.awaited)
        wanted = {
            tp for tp in active if aligner.held(tp) < DRAIN_HELD_BELOW or tp in aligner.awaited
        } or active
        return await getmany(self, wanted, timeout), active

    def _fetch_state(self, tp: Any) -> Any:
        """aiokafka 0.14's state of an assigned partition (pinned), or None.

        Read directly: the public ``position()`` is a coroutine, and this runs
        for every batch.
        """
        try:
            return fetch_state(aiokafka_consumer(self), tp)
        except Exception:  # not assigned (any more)
            return None

    def _arrival_stamp(self, tp: Any) -> int:
        """The stamp (ms) of the fetch answer that brought ``tp``'s records just handed over.

        A fetch answer may say the account-events partition is caught up while
        the producer's request carrying an older event for it is still being
        appended, partition by partition, right after the CDRs that answer
        brought (and the other way round). So records are covered only by an
        answer to a later fetch (:meth:`_caught_up`). aiokafka keeps one fetch
        in flight per broker, sends the next once an answer is processed, and
        does not fetch ``tp`` again while records of it are buffered, so
        ``tp``'s last answer time is that of the answer that brought these
        records, or of a later one (later is only more cautious), and an
        answer stamped later (ms) was asked for after they were received.
        """
        arrived = getattr(self._fetch_state(tp), "timestamp", None)
        if arrived is None:  # not assigned any more: only answers from now on count
            arrived = int(time.time() * 1000)
        return int(arrived)

    def _caught_up(self, tp: Any) -> float | None:
        """The stamp of the fetch answer that found this partition with nothing more
        to fetch (position at the last stable offset), or None if it may have more."""
        state = self._fetch_state(tp)
        if state is None or not state.has_valid_position:
            return None
        end, answered = state.lso, state.timestamp
        if end is None or end < 0 or answered is None or state.position < end:
            return None
        if state.highwater is not None and state.highwater > end:
            # a transaction is undecided there: its records (moved copies, whose commit
            # markers reach partitions one by one) may still become readable
            return None
        return float(answered)

    async def _apply(self, batches: dict[int, dict[Any, list[Any]]], generation: int) -> None:
        async with self.batch_lock():
            if not self.flow_active or generation != self.app.consumer_generation_id:
                self._rewind(self._records_of(batches))  # a rebalance began
                return
            assert self.handler is not None
            results = await asyncio.gather(
                *(self.handler(p, tps) for p, tps in batches.items()), return_exceptions=True
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            self._commit_offsets_later([r for r in results if isinstance(r, dict)])
            if failures:
                log.error("batch failed, rewinding to committed offsets", exc_info=failures[0])
                self._rewind(self._records_of(batches))
                await self.perform_seek()

    def _commit_offsets_later(self, offsets: list[dict[TopicPartition, int]]) -> None:
        """Commit the group offsets of committed batches, off the batch path.

        They are hints: the applied-offsets marker in each partition's state
        decides what is skipped, so offsets that lag (a crash before this
        commit, a rejected commit during a rebalance) only mean records fetched
        again and skipped. Commits never wait on each other; the newest wins.
        """
        due = self._offsets_due
        for committed in offsets:
            due.update(committed)
        if due and (self._offsets_task is None or self._offsets_task.done()):
            self._offsets_task = asyncio.ensure_future(self._commit_due_offsets())

    async def _commit_due_offsets(self) -> None:
        while self._offsets_due:
            due, self._offsets_due = self._offsets_due, {}
            consumer = aiokafka_consumer(self)
            offsets = {tp: OffsetAndMetadata(offset, "") for tp, offset in due.items()}
            try:
                await self._thread.call_thread(consumer.commit, offsets)
            except Exception as exc:  # a rebalance or a partition gone: refetched, then skipped
                log.info("group offsets not committed (%s: %s)", type(exc).__name__, exc)

    @staticmethod
    def _records_of(batches: dict[int, dict[Any, list[Any]]]) -> dict[Any, list[Any]]:
        return {tp: records for tps in batches.values() for tp, records in tps.items()}

    async def wait_empty(self) -> None:
        async with self.batch_lock():
            pass
        await super().wait_empty()

    async def on_stop(self) -> None:
        """Let the last group offsets reach the broker, so a restart fetches less again."""
        await super().on_stop()
        task = self._offsets_task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), OFFSETS_AT_STOP_S)
            except Exception:  # late or refused: the next owner refetches and skips
                task.cancel()


class RaterTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer
