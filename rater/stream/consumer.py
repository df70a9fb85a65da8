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
from collections.abc import Awaitable, Callable
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from rater.stream.aligner import Aligner

log = logging.getLogger(__name__)

BatchHandler = Callable[[int, dict[Any, list[Any]]], Awaitable[None]]
FETCH_MAX_WAIT_MS = 50  # longest an empty fetch waits at the broker (Faust fixes 1,500)
HOLD_WARNING_S = 30.0  # a hold this long means an input partition is not being fetched


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

    def _create_worker_consumer(self, transport: Any) -> Any:
        """Faust's consumer, but the broker holds an empty fetch for 50 ms, not 1.5 s.

        aiokafka keeps one fetch in flight per broker and leaves out partitions
        that still have records buffered, so a fetch for the idle input topic
        alone could hold the next CDRs back for Faust's fixed 1,500 ms: that
        was the 1.5 s median latency the benchmark measured at half load.
        """
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by start(), which builds the fetcher
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    hot_topics: frozenset[str] = frozenset()
    handler: BatchHandler | None = None
    _batch_lock: asyncio.Lock | None = None
    _aligner: Aligner | None = None
    _aligned_generation: int = -1

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
        callback, to_message = self.callback, self._to_message
        aligner = self.aligner()
        topics = sorted(self.hot_topics)
        holding: set[int] = set()
        warned_at = 0.0
        while not (self._stopped.is_set() or fetcher._stopped.is_set()):
            records, active = await self._next_records(0.05 if holding else 1.0)
            if self.should_stop:
                continue
            if not self.flow_active:
                aligner.clear()
                holding.clear()
                await self.perform_seek()
                continue
            generation = self.app.consumer_generation_id
            if generation != self._aligned_generation:
                aligner.clear()  # a rebalance: what was held is fetched again
                holding.clear()
                self._aligned_generation = generation
            now = time.monotonic()
            for tp, tp_records in (records or {}).items():
                if tp.topic in self.hot_topics:
                    if active is None or tp in active:
                        aligner.add(tp, tp_records, now)
                        holding.add(tp.partition)
                else:
                    for record in tp_records:
                        await callback(to_message(tp, record))
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

    async def _next_records(self, timeout: float) -> tuple[Any, Any]:
        """Faust's ``_wait_next_records``, but not from partitions the aligner holds records of.

        aiokafka hands out one partition's fetched records until they run out,
        so an input partition with a large fetch would starve the other topic's
        partition whose records the held ones wait for.
        """
        if not self.flow_active:
            await self.wait(self.can_resume_flow)
        active = self._get_active_partitions()
        if not active:
            await self.sleep(1)
            return {}, active
        aligner = self.aligner()
        wanted = {tp for tp in active if not aligner.held(tp)} or active
        return await self._getmany(active_partitions=wanted, timeout=timeout), active

    def _caught_up(self, tp: Any) -> bool:
        """Has this partition nothing more to fetch right now (position at the LSO)?

        Reads aiokafka 0.14's subscription state (pinned): the public
        ``position()`` is a coroutine, this runs for every batch.
        """
        try:
            consumer = self._thread._ensure_consumer()
            state = consumer._subscription.subscription.assignment.state_value(tp)
            end = consumer.last_stable_offset(tp)
        except Exception:  # not assigned (any more), or no fetch answered yet
            return False
        if state is None or not state.has_valid_position or end is None or end < 0:
            return False
        return state.position >= end

    async def _apply(self, batches: dict[int, dict[Any, list[Any]]], generation: int) -> None:
        async with self.batch_lock():
            if not self.flow_active or generation != self.app.consumer_generation_id:
                return  # a rebalance began: the next owner starts from committed offsets
            assert self.handler is not None
            results = await asyncio.gather(
                *(self.handler(p, tps) for p, tps in batches.items()), return_exceptions=True
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                log.error("batch failed, rewinding to committed offsets", exc_info=failures[0])
                self.aligner().clear()
                await self.perform_seek()

    async def wait_empty(self) -> None:
        async with self.batch_lock():
            pass
        await super().wait_empty()


class RaterTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer
