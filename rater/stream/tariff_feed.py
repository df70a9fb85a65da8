"""The tariff index of every worker, fed from the compacted ``tariffs`` topic.

A plain consumer without a group reads every partition from the start on
every worker (not a GlobalTable: faust-streaming #283), then keeps tailing.
Bad rows are kept aside as DLQ records; the owner of partition 0 publishes
them (see :mod:`rater.stream.partition`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from rater.compat.aiokafka import refresh_metadata
from rater.core.outputs import Output
from rater.core.processor import Processor
from rater.core.tariffs import TariffIndex

log = logging.getLogger(__name__)


class TariffFeed:
    def __init__(self, bootstrap: str, topic: str, client_kwargs: dict[str, Any]) -> None:
        self.topic = topic
        self.index = TariffIndex()
        self._processor = Processor(self.index)
        self.rejected: list[tuple[int, int, Output]] = []  # (partition, offset, dlq record)
        self._bootstrap = bootstrap
        self._client_kwargs = client_kwargs
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._progress: asyncio.Condition | None = None

    async def start(self) -> None:
        """Start and read every row that exists now, so rating starts complete."""
        # Created here, not in __init__: aiokafka binds clients to the running loop.
        self._progress = asyncio.Condition()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            **self._client_kwargs,
        )
        await self._consumer.start()
        # A consumer without subscriptions has no metadata for the topic yet: ask for it.
        cluster = await refresh_metadata(self._consumer)
        partitions = cluster.partitions_for_topic(self.topic)
        if not partitions:
            raise RuntimeError(f"topic {self.topic} does not exist: run `rater topics create`")
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        self._task = asyncio.create_task(self._tail(), name="tariff-feed")
        await self.catch_up()
        log.info("tariff index loaded: %d rows", len(self.index))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def catch_up(self, timeout: float = 30.0) -> None:
        """Wait until every row committed before this call is in the index."""
        assert self._consumer is not None and self._progress is not None, "start() first"
        ends = await self._consumer.end_offsets(self._partitions)
        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(lambda: self._reached(ends)), timeout)

    def _reached(self, ends: dict[TopicPartition, int]) -> bool:
        if self._task is not None and self._task.done():
            self._task.result()  # surfaces the feed's failure instead of waiting forever
        return all(self._positions.get(tp, -1) >= end for tp, end in ends.items())

    async def _tail(self) -> None:
        assert self._consumer is not None and self._progress is not None
        for tp in self._partitions:
            self._positions[tp] = await self._consumer.position(tp)
        while True:
            batch = await self._consumer.getmany(timeout_ms=500, max_records=10_000)
            for tp, records in batch.items():
                for record in records:
                    for output in self._processor.tariff(
                        record.key, record.value, tp.topic, tp.partition, record.offset
                    ):
                        self.rejected.append((tp.partition, record.offset, output))
            for tp in self._partitions:
                self._positions[tp] = await self._consumer.position(tp)
            async with self._progress:
                self._progress.notify_all()
