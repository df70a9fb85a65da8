"""The bench's latency reader on the real broker: what it reports, and when it is stopped."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from load.bench.latency_reader import start
from rater.devkit.localkafka.admin import TopicFactory

pytestmark = pytest.mark.integration


async def report(reader: asyncio.subprocess.Process) -> dict[str, list[float]]:
    assert reader.stdout is not None
    output = await asyncio.wait_for(reader.stdout.read(), 60)
    assert await reader.wait() == 0
    return orjson.loads(output)


def rated(cdr_id: str) -> bytes:
    return orjson.dumps({"tenant_id": "t-1", "cdr_id": cdr_id})


async def test_reports_the_latency_cdrs_written_after_it_is_ready(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create("rated-cdrs", partitions=2)
    async with AIOKafkaProducer(bootstrap_servers=kafka_bootstrap) as producer:
        await producer.send_and_wait(topic, rated("lat0-9"), key=b"t-1")  # before: not read
        reader = await start(kafka_bootstrap, topic, "lat0", expected=2)
        await producer.send_and_wait(topic, rated("c-5"), key=b"t-2")  # the backlog's: not ours
        first = await producer.send_and_wait(topic, rated("lat0-0"), key=b"t-1")
        await producer.send_and_wait(topic, rated("lat0-1"), key=b"t-1")
    seen = await report(reader)
    assert seen["indexes"] == [0, 1]
    assert seen["record_ms"][0] == first.timestamp
    assert all(read >= ts for read, ts in zip(seen["read_ms"], seen["record_ms"], strict=True))


async def test_stopped_early_it_reports_what_it_has_seen(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create("rated-cdrs", partitions=2)
    reader = await start(kafka_bootstrap, topic, "lat0", expected=5)
    reader.terminate()
    assert await report(reader) == {"indexes": [], "read_ms": [], "record_ms": []}
