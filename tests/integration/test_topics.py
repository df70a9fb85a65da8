"""`rater topics create` (``ensure_topics``) on the real broker.

It must create the ten topics co-partitioned, leave existing ones alone, return
only once every partition is led (a worker started right after must be
assigned its partitions), and refuse an existing topic with another partition
count with a message that names it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from rater.config import Settings
from rater.core.topics import TOPICS
from rater.stream.topics import TopicLayoutError, ensure_topics, topic_specs


def fresh(kafka_bootstrap: str, unique_prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        bootstrap_servers=kafka_bootstrap,
        app_id=unique_prefix + "rater",
        topic_prefix=unique_prefix,
        partitions=3,
        data_dir=tmp_path / "data",
        expiry_sweep=False,
        web_port=0,
    )


async def describe(settings: Settings, names: list[str]) -> dict[str, list[dict]]:
    """Each topic's partitions as a new client's metadata request sees them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        topics = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {t["topic"]: t["partitions"] for t in topics if t["error_code"] == 0}


async def test_creates_every_topic_led_and_is_idempotent(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    settings = fresh(kafka_bootstrap, unique_prefix, tmp_path)
    names = [spec.name for spec in topic_specs(settings)]
    assert len(names) == len(TOPICS) + 1  # the spec's ten topics and the table's changelog

    created = await ensure_topics(settings)

    assert sorted(created) == sorted(names)
    seen = await describe(settings, names)  # at once: no wait between creation and use
    for spec in topic_specs(settings):
        partitions = seen[spec.name]
        assert len(partitions) == spec.partitions, spec.name
        assert all(p["leader"] >= 0 for p in partitions), f"{spec.name}: {partitions}"
    assert len(seen[settings.topic("tariffs")]) == 1
    assert {len(seen[settings.topic(name)]) for name in TOPICS if name != "tariffs"} == {3}
    assert await ensure_topics(settings) == []


async def test_an_existing_topic_with_another_partition_count_is_refused(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    settings = fresh(kafka_bootstrap, unique_prefix, tmp_path)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(settings.topic("cdrs"), 5, 1)])
    finally:
        await admin.close()
    deadline = time.monotonic() + 30
    while (
        len((await describe(settings, [settings.topic("cdrs")])).get(settings.topic("cdrs"), []))
        < 5
    ):
        assert time.monotonic() < deadline, "the operator's topic never showed its 5 partitions"
        await asyncio.sleep(0.1)  # metadata poll interval

    with pytest.raises(TopicLayoutError) as refused:
        await ensure_topics(settings)

    message = str(refused.value)
    assert f"{settings.topic('cdrs')} has 5 partitions, expected 3" in message
    assert "RATER_PARTITIONS=3" in message
    # Nothing else was created: a half-made layout would be co-partitioned wrongly later.
    assert list(await describe(settings, [settings.topic("rated-cdrs")])) == []

    env = os.environ | settings.to_env()
    command = [sys.executable, "-m", "rater", "topics", "create"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "has 5 partitions, expected 3" in result.stderr
    assert "Traceback" not in result.stderr
