"""A simulated payment side for the demo: answers every top-up request the rater makes.

Reads ``topup-requests`` (``read_committed``, from the start) and answers each
on ``account-events`` after a short delay, as a card processor would:
``topup_succeeded`` for the amount asked, or ``topup_failed`` ("card
declined") for the tenants whose card fails (SPEC 6.4).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from rater.core.clock import format_time

ANSWER_DELAY_S = 0.5  # a card processor takes a moment


class PaymentSide:
    def __init__(
        self,
        bootstrap: str,
        requests_topic: str,
        events_topic: str,
        partitions: int,
        producer: AIOKafkaProducer,
        card_fails: Callable[[str], bool],
    ) -> None:
        self.bootstrap = bootstrap
        self.requests_topic = requests_topic
        self.events_topic = events_topic
        self.partitions = partitions
        self.producer = producer
        self.card_fails = card_fails
        self.answered = 0
        self.requests_seen = 0

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            tps = [TopicPartition(self.requests_topic, p) for p in range(self.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batch = await consumer.getmany(*tps, timeout_ms=300)
                for records in batch.values():
                    for record in records:
                        self.requests_seen += 1
                        request = orjson.loads(record.value)
                        await asyncio.sleep(ANSWER_DELAY_S / max(1, len(records)))
                        await self.answer(request)
        finally:
            await consumer.stop()

    async def answer(self, request: dict[str, Any]) -> None:
        tenant = request["tenant_id"]
        result: dict[str, Any] = {
            "event_id": f"pay-{request['request_id']}",
            "tenant_id": tenant,
            "at": format_time(time.time_ns() // 1000),
            "request_id": request["request_id"],
        }
        if self.card_fails(tenant):
            result |= {"type": "topup_failed", "reason": "card declined"}
        else:
            result |= {"type": "topup_succeeded", "amount": request["amount"]}
        await self.producer.send_and_wait(
            self.events_topic, orjson.dumps(result), key=tenant.encode()
        )
        self.answered += 1
