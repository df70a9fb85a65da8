"""Read back everything a topic shows at one isolation level: the check after producing."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def read_all(
    bootstrap: str,
    topic: str,
    isolation_level: str = "read_committed",
    timeout: float = 30.0,
) -> list[ConsumerRecord]:
    """Every record visible now, in partition then offset order.

    Stops at the end offsets taken at the start (for read_committed that is the last stable
    offset), so the result does not depend on how long the caller waits.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation_level,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await _partitions(bootstrap, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: dict[TopicPartition, list[ConsumerRecord]] = {tp: [] for tp in tps}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            if loop.time() >= deadline:
                raise TimeoutError(f"{topic}: not at end offsets {end} after {timeout:.0f}s")
            batch = await consumer.getmany(*tps, timeout_ms=200)
            for tp, msgs in batch.items():
                records[tp].extend(msgs)
        return [r for tp in tps for r in records[tp]]
    finally:
        await consumer.stop()


async def _partitions(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0 or not described["partitions"]:
        raise LookupError(f"topic {topic!r} not found (error {described['error_code']})")
    return sorted(p["partition"] for p in described["partitions"])
