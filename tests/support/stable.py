"""Checks that no transaction is left open on the partitions a worker writes."""

from __future__ import annotations

import asyncio
import time

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient

from rater.config import Settings
from rater.core.topics import OUTPUT_TOPICS
from rater.stream.app import TABLE
from rater.stream.stability import READ_UNCOMMITTED, TransactionAdmin


def written_partitions(settings: Settings) -> list[TopicPartition]:
    """Every partition a worker of ``settings`` writes: its changelog and its outputs."""
    topics = [f"{settings.app_id}-{TABLE}-changelog"]
    topics += [settings.topic(name) for name in OUTPUT_TOPICS]
    return [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]


async def open_partitions(settings: Settings, timeout: float = 30.0) -> dict[str, tuple[int, int]]:
    """The written partitions whose last stable offset is below the log end after ``timeout``.

    Markers are written a moment after a commit, so a partition gets until
    the deadline to close; an empty answer means every one is stable.
    """
    client = AIOKafkaClient(bootstrap_servers=settings.bootstrap_servers)
    await client.bootstrap()
    try:
        admin = TransactionAdmin(client, settings.bootstrap_servers)
        tps = written_partitions(settings)
        deadline = time.monotonic() + timeout
        while True:
            ends = await admin.offsets(tps, READ_UNCOMMITTED)
            stable = await admin.offsets(tps)
            left = {
                f"{tp.topic}-{tp.partition}": (stable[tp], ends[tp])
                for tp in tps
                if stable[tp] < ends[tp]
            }
            if not left or time.monotonic() >= deadline:
                return left
            await asyncio.sleep(0.2)  # poll interval; the deadline above bounds the wait
    finally:
        await client.close()
