"""Producing input messages in a defined order, for the demo, tests and benchmarks."""

from __future__ import annotations

import time

import orjson
from aiokafka import AIOKafkaProducer

from rater.config import Settings
from rater.devkit.partitioners import Partitioner


async def produce_inputs(
    settings: Settings,
    messages: list[tuple[str, bytes, bytes]],
    tariffs: list[dict] | None = None,
    place: Partitioner | None = None,
) -> None:
    """Send tariff rows, then ``(topic, key, value)`` messages with increasing timestamps.

    The worker merges its two input topics by record timestamp, so strictly
    increasing timestamps make the order it applies them the order given here.
    ``place`` writes each message to the partition another client's
    partitioner would choose (rater/devkit/partitioners.py); by default the
    producer's own (the Java client's murmur2).
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
            partition = None if place is None else place(key, settings.partitions)
            await producer.send(
                settings.topic(topic), value, key=key, partition=partition, timestamp_ms=base + i
            )
        await producer.flush()
    finally:
        await producer.stop()
