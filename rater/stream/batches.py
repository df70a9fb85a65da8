"""A transaction's records, written into one aiokafka batch per topic partition.

``AIOKafkaProducer.send`` costs a coroutine, a future and an accumulator
lookup per record; a rated CDR makes two to four records, so that was a
large share of the worker's time. ``BatchBuilder.append`` writes a record
straight into the batch (aiokafka's C extension) and a whole batch is handed
to the producer at once. Records keep their order within each topic
partition, which is all Kafka orders; the transaction makes them visible
together or not at all.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

Where = tuple[str, int]
Pending = tuple[Where, int, "asyncio.Future[Any]"]  # a batch handed over: where, records, delivery


class RecordBatches:
    """Records added for one producer's transaction, sent by :meth:`hand_over`."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._open: dict[Where, Any] = {}
        self._full: list[tuple[Where, Any]] = []

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        where = (topic, partition)
        builder = self._open.get(where)
        if builder is None:
            builder = self._open[where] = self._producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None) is not None:
            return
        self._full.append((where, builder))  # full: a new batch for the same partition
        builder = self._open[where] = self._producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None) is None:
            size = len(key or b"") + len(value or b"")
            raise MessageSizeTooLargeError(f"a {size}-byte record for {topic} fits no batch")

    def add_record(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None,
        headers: list[tuple[str, bytes]],
    ) -> None:
        """Add a copy of a record: its own timestamp (ms; None: now) and headers are kept.

        Apart from :meth:`add`, whose records are stamped when written, so
        that the rater's outputs keep their one-call path.
        """
        where = (topic, partition)
        builder = self._open.get(where)
        if builder is None:
            builder = self._open[where] = self._producer.create_batch()
        # aiokafka 0.14's BatchBuilder passes the timestamp on as ms (pinned)
        record = {"key": key, "value": value, "timestamp": timestamp_ms, "headers": headers}
        if builder.append(**record) is not None:
            return
        self._full.append((where, builder))
        builder = self._open[where] = self._producer.create_batch()
        if builder.append(**record) is None:
            size = len(key or b"") + len(value or b"")
            raise MessageSizeTooLargeError(f"a {size}-byte record for {topic} fits no batch")

    @property
    def has_full(self) -> bool:
        """True once some batch is full and waits to be handed over."""
        return bool(self._full)

    async def hand_over(self, full_only: bool = False) -> list[Pending]:
        """Give what was added to the producer, without waiting for the broker.

        ``full_only`` hands over only batches that are full: a producer of a long
        stream (``python -m load produce``) keeps memory flat that way.
        """
        batches = self._full if full_only else self._full + list(self._open.items())
        self._full = []
        if not full_only:
            self._open = {}
        pending = []
        for (topic, partition), builder in batches:
            builder.close()  # nothing else may append to it once it is the producer's
            future = await self._producer.send_batch(builder, topic, partition=partition)
            pending.append(((topic, partition), builder.record_count(), future))
        return pending

    @staticmethod
    async def delivered(pending: list[Pending]) -> dict[Where, tuple[int, int]]:
        """Wait for the broker; the first and last offsets written per topic partition."""
        spans: dict[Where, tuple[int, int]] = {}
        try:
            for where, count, future in pending:
                first = (await future).offset  # a batch's future gives its base offset
                last = first + count - 1
                known = spans.get(where)
                spans[where] = (first, last) if known is None else (known[0], max(known[1], last))
        except BaseException:
            for _, _, future in pending:  # the batch failed: its other batches' errors are known
                future.add_done_callback(_retrieved)
            raise
        return spans


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
