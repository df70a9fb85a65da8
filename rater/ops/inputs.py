"""Producing input messages in a defined order, for the demo, tests and benchmarks."""

from __future__ import annotations

import time

import orjson
from aiokafka import AIOKafkaProducer

from rater.stream.settings import Settings


async def produce_inputs(
    settings: Settings,
    messages: list[tuple[str, bytes, bytes]],
    tariffs: list[dict] | None = None,
) -> None:
    """Send tariff rows, then ``(topic, key, value)`` messages with increasing timestamps.

    The worker merges its two input topics by record timestamp, so strictly
    increasing timestamps make the order it applies them the order given here.
    """
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for row in tariffs or []:
            await producer.send(
                settings.topic("tariffs"), orjson.dumps(row), key=row["tariff_id"].encode()
            )
        base = int(time.time() * 1000)
        for i, (topic, key, value) in enumerate(messages):
            await producer.send(settings.topic(topic), value, key=key, timestamp_ms=base + i)
        await producer.flush()
    finally:
        await producer.stop()
