"""The record of notices already finished, so a restart does not mail them again (SPEC 10).

A compacted Kafka topic (``<app id>-notifier-sent``), keyed by tenant and
notification id, written after the SMTP server accepted a mail (or refused
it for good) and before the consumer offset may pass it. Every notifier
reads it whole at start and again when it is given partitions, so a notice
finished by another instance before a rebalance is not mailed again either.
Why a topic rather than a local file: decision "Notifier: the sent log is a
compacted topic" in docs/decisions.md.

A crash between the server's acceptance and this record is the one window
left: that notice is mailed again after the restart, with the same
Message-ID (compose.message_id), as SPEC 10 allows.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from rater.compat.aiokafka import update_metadata
from rater.config import Settings
from rater.core.clock import format_time
from rater.notifier.notice import Notice

READY_TIMEOUT_S = 60.0


class SentLog:
    """Keys of finished notices; :meth:`record` returns once the broker has the record."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self._keys: set[bytes] = set()
        kwargs = settings.security.client_kwargs()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,  # records of concurrent sends share a request
            **kwargs,
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **kwargs,
        )
        self._partitions: list[TopicPartition] = []

    def __contains__(self, key: bytes) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    async def start(self) -> None:
        await _ensure_compacted_topic(self.settings, self.topic)
        await self._producer.start()
        await self._consumer.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (partitions := self._consumer.partitions_for_topic(self.topic)):
            if time.monotonic() >= deadline:
                raise RuntimeError(f"topic {self.topic} has no partitions")
            await update_metadata(self._consumer)  # no public refresh
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        await self.catch_up()

    async def catch_up(self) -> int:
        """Read the log up to its end as of now; returns how many keys it holds."""
        end = await self._consumer.end_offsets(self._partitions)
        while [tp for tp in self._partitions if await self._consumer.position(tp) < end[tp]]:
            batch = await self._consumer.getmany(*self._partitions, timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if record.key is not None and record.value is not None:
                        self._keys.add(record.key)
        return len(self._keys)

    async def record(self, notice: Notice, outcome: str, message_id: str) -> None:
        value: dict[str, Any] = {
            "tenant_id": notice.tenant_id,
            "notification_id": notice.notification_id,
            "outcome": outcome,
            "message_id": message_id,
            "at": format_time(int(time.time() * 1_000_000)),
        }
        key = notice.key
        await (await self._producer.send(self.topic, orjson.dumps(value), key=key))
        self._keys.add(key)

    async def stop(self) -> None:
        await asyncio.gather(self._producer.stop(), self._consumer.stop())


async def _ensure_compacted_topic(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.security.client_kwargs()
    )
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})]
        )
        for item in response.topic_errors:
            if item[1] not in (0, TopicAlreadyExistsError.errno):
                raise for_code(item[1])(f"creating topic {item[0]}")
    finally:
        await admin.close()
