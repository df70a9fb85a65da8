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

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

Where = tuple[str, int]


class RecordBatches:
    """Records added for one producer's transaction, sent by :meth:`send`."""

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

    async def send(self) -> dict[Where, int]:
        """Send what was added and wait for the broker; the last offset per topic partition."""
        batches = self._full + list(self._open.items())
        self._full, self._open = [], {}
        pending = []
        for (topic, partition), builder in batches:
            builder.close()  # nothing else may append to it once it is the producer's
            future = await self._producer.send_batch(builder, topic, partition=partition)
            pending.append(((topic, partition), builder.record_count(), future))
        reached: dict[Where, int] = {}
        for where, count, future in pending:
            last = (await future).offset + count - 1  # a batch's future gives its base offset
            reached[where] = max(reached.get(where, -1), last)
        return reached
