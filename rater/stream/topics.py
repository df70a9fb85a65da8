"""Creating the rater's topics, idempotently and co-partitioned."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from rater.config import Settings
from rater.core.topics import TENANT_KEYED

TABLE_CHANGELOG = "{app_id}-tenants-changelog"
# A DLQ record holds the rejected value as text: base64 (4/3) when it is not UTF-8,
# JSON escapes (up to 6 bytes a byte) when it has control characters. An input
# record at the broker's default limit (1 MB) must still fit, or its partition
# would retry the batch forever; 8 MiB is the workers' max_request_size
# (transactions.py). Decisions: "A DLQ record may be larger than its input".
DLQ_CONFIG = {"max.message.bytes": str(8 * 1024 * 1024)}
READY_TIMEOUT_S = 30.0  # longest to wait for created topics to have a leader for every partition


@dataclass(frozen=True)
class TopicSpec:
    """One topic to create; config values are Kafka topic configs (e.g. cleanup.policy)."""

    name: str
    partitions: int = 1
    replication: int = 1
    config: Mapping[str, str] = field(default_factory=dict)


class TopicLayoutError(RuntimeError):
    """An existing topic does not have the layout the rater needs."""


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the rater reads or writes, with its partitions and configs."""
    n = settings.partitions
    specs = [
        TopicSpec(settings.topic(name), n, 1, DLQ_CONFIG if name == "rater-dlq" else {})
        for name in TENANT_KEYED
    ]
    specs.append(TopicSpec(settings.topic("tariffs"), 1, 1, {"cleanup.policy": "compact"}))
    changelog = TABLE_CHANGELOG.format(app_id=settings.app_id)
    specs.append(TopicSpec(changelog, n, 1, {"cleanup.policy": "compact"}))
    return specs


async def ensure_topics(settings: Settings, replication: int = 1) -> list[str]:
    """Create missing topics; fail when an existing one has the wrong partition count.

    Returns the names created, once every partition of every topic has a
    leader. Co-partitioning is what lets one worker own all of a tenant's
    input and state, so a mismatch is an error, never repaired.
    """
    specs = topic_specs(settings)
    names = [spec.name for spec in specs]
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.security.client_kwargs()
    )
    await admin.start()
    try:
        existing = {name: total for name, (total, _) in (await _layout(admin, names)).items()}
        _check_partition_counts(settings, specs, existing)
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(s.name, s.partitions, replication, topic_configs=dict(s.config))
                    for s in missing
                ]
            )
            for item in response.topic_errors:
                name, code = item[0], item[1]
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise for_code(code)(f"creating topic {name}")
        # A topic seen as missing may have been created meanwhile, with other counts.
        _check_partition_counts(settings, specs, await _led_layout(admin, names))
        return [spec.name for spec in missing]
    finally:
        await admin.close()


def _check_partition_counts(
    settings: Settings, specs: list[TopicSpec], counts: dict[str, int]
) -> None:
    wrong = [
        f"{spec.name} has {counts[spec.name]} partitions, expected {spec.partitions}"
        for spec in specs
        if spec.name in counts and counts[spec.name] != spec.partitions
    ]
    if wrong:
        raise TopicLayoutError(
            "topics are not co-partitioned as configured (RATER_PARTITIONS="
            f"{settings.partitions}): " + "; ".join(wrong)
        )


async def _led_layout(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """The partition count of each topic, once every partition of each has a leader.

    CreateTopics answers before every broker's metadata shows the topics, and
    a second worker may find them created but not yet led. A worker started
    at that moment joined its group, was assigned nothing ("Ignoring missing
    topic") and sat idle until its next metadata refresh, about a minute
    later (seen in the takeover test right after a broker start).
    """
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        layout = await _layout(admin, names)
        late = sorted(n for n in names if n not in layout or layout[n][0] != layout[n][1])
        if not late:
            return {name: total for name, (total, _) in layout.items()}
        if time.monotonic() >= deadline:
            raise TopicLayoutError(f"topics still without a leader: {', '.join(late)}")
        await asyncio.sleep(0.1)  # metadata poll interval


async def _layout(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, tuple[int, int]]:
    """Each existing topic's partition count and how many of them have a leader."""
    layout: dict[str, tuple[int, int]] = {}
    for topic in await admin.describe_topics(names):
        if topic["error_code"] == 0:
            partitions = topic["partitions"]
            layout[topic["topic"]] = (len(partitions), sum(p["leader"] >= 0 for p in partitions))
    return layout
