"""One transactional producer per tenant partition, owned by the rater.

Faust's own exactly-once manager sends to topics the app does not consume
outside the transaction, flushes the changelog buffer after the commit and
names transactional ids after topic groups (docs/decisions.md). The rater
commits each batch itself, so this manager only keeps the producers: it
starts one per assigned partition (``InitProducerId`` fences the partition's
previous owner before anything is read) and stops those that were revoked.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.transport.consumer import TransactionManager

log = logging.getLogger(__name__)


class PartitionTransactions(TransactionManager):
    """Keeps ``producers[p]`` with an open transaction for every owned partition."""

    hot_topics: frozenset[str] = frozenset()
    client_kwargs: dict[str, Any] = {}
    bootstrap_servers: str = "127.0.0.1:9092"

    def __post_init__(self) -> None:
        self.producers: dict[int, AIOKafkaProducer] = {}

    def transactional_id(self, partition: int) -> str:
        # Independent of Faust's topic groups, so every release fences the last one.
        return f"{self.app.conf.id}-rater-{partition}"

    async def on_rebalance(self, assigned: Any, revoked: Any, newly_assigned: Any) -> None:
        wanted = {tp.partition for tp in assigned if tp.topic in self.hot_topics}
        for partition in sorted(set(self.producers) - wanted):
            await self.producers.pop(partition).stop()
        for partition in sorted(wanted - set(self.producers)):
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                transactional_id=self.transactional_id(partition),
                transaction_timeout_ms=60_000,
                linger_ms=5,
                max_batch_size=512 * 1024,
                max_request_size=8 * 1024 * 1024,
                **self.client_kwargs,
            )
            await producer.start()  # InitProducerId: the previous owner is fenced here
            await producer.begin_transaction()
            self.producers[partition] = producer
        log.info("transactional producers for partitions %s", sorted(self.producers))

    async def commit(self, offsets: Any, start_new_transaction: bool = True) -> bool:
        return True  # batches commit inline with their outputs; nothing else is acked

    async def on_stop(self) -> None:
        for producer in self.producers.values():
            await producer.stop()
        self.producers.clear()
