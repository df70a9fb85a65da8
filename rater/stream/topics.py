"""Creating the rater's topics, idempotently and co-partitioned."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from rater.localkafka.admin import TopicSpec
from rater.stream.settings import TENANT_KEYED, Settings

TABLE_CHANGELOG = "{app_id}-tenants-changelog"


class TopicLayoutError(RuntimeError):
    """An existing topic does not have the layout the rater needs."""


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the rater reads or writes, with its partitions and configs."""
    n = settings.partitions
    specs = [TopicSpec(settings.topic(name), n) for name in TENANT_KEYED]
    specs.append(TopicSpec(settings.topic("tariffs"), 1, 1, {"cleanup.policy": "compact"}))
    changelog = TABLE_CHANGELOG.format(app_id=settings.app_id)
    specs.append(TopicSpec(changelog, n, 1, {"cleanup.policy": "compact"}))
    return specs


async def ensure_topics(settings: Settings, replication: int = 1) -> list[str]:
    """Create missing topics; fail when an existing one has the wrong partition count.

    Returns the names created. Co-partitioning is what lets one worker own all
    of a tenant's input and state, so a mismatch is an error, never repaired.
    """
    specs = topic_specs(settings)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.security.client_kwargs()
    )
    await admin.start()
    try:
        existing = await _partition_counts(admin, [spec.name for spec in specs])
        wrong = [
            f"{spec.name} has {existing[spec.name]} partitions, expected {spec.partitions}"
            for spec in specs
            if spec.name in existing and existing[spec.name] != spec.partitions
        ]
        if wrong:
            raise TopicLayoutError(
                "topics are not co-partitioned as configured (RATER_PARTITIONS="
                f"{settings.partitions}): " + "; ".join(wrong)
            )
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
        return [spec.name for spec in missing]
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for topic in await admin.describe_topics(names):
        if topic["error_code"] == 0:
            counts[topic["topic"]] = len(topic["partitions"])
    return counts
