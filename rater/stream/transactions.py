"""One transactional producer per tenant partition, owned by the rater.

Faust's own exactly-once manager sends to topics the app does not consume
outside the transaction, flushes the changelog buffer after the commit and
names transactional ids after topic groups (docs/decisions.md). The rater
commits each batch itself, so this manager only keeps the producers.

A producer is started fresh for every owned partition after every
assignment, not only for newly assigned ones: a worker frozen past its
session (a GC pause, a stalled VM, SIGSTOP) is given its partitions back
while another worker fenced its producers in between, and Faust reports no
partition as revoked or new then (docs/decisions.md D31 ("Fenced producers")).
``InitProducerId`` fences the partition's previous producer and makes the
coordinator end the transactions it knows of; what it does not know of (a
hanging transaction) is repaired or refused before the partition's state is
recovered (:meth:`TransactionAdmin.repair_owned`). A batch that fails for any
reason gets its partition a new producer too (:meth:`renew`), so a fenced or
broken producer is never used twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from faust.transport.consumer import TransactionManager

from rater.compat.aiokafka import producer_id
from rater.stream.stability import HangingTransaction, TransactionAdmin

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0  # a producer that cannot flush within this is dropped: it is fenced anyway


class PartitionTransactions(TransactionManager):
    """Keeps ``producers[p]`` with an open transaction for every owned partition."""

    hot_topics: frozenset[str] = frozenset()
    # Every topic whose partition p only partition p's producer writes: the
    # changelog and the outputs (co-partitioned). Set by build_app.
    written_topics: tuple[str, ...] = ()
    client_kwargs: dict[str, Any] = {}
    bootstrap_servers: str = "127.0.0.1:9092"

    def __post_init__(self) -> None:
        self.producers: dict[int, AIOKafkaProducer] = {}
        self.wanted: set[int] = set()
        self._admin: TransactionAdmin | None = None
        self._admin_lock = asyncio.Lock()

    def transactional_id(self, partition: int) -> str:
        # Independent of Faust's topic groups, so every release fences the last one.
        return f"{self.app.conf.id}-rater-{partition}"

    async def admin(self) -> TransactionAdmin:
        """LSO look-ups and transaction repair, over a client of their own."""
        async with self._admin_lock:
            if self._admin is None:
                client = AIOKafkaClient(
                    bootstrap_servers=self.bootstrap_servers, **self.client_kwargs
                )
                await client.bootstrap()
                self._admin = TransactionAdmin(client, self.bootstrap_servers, self.client_kwargs)
            return self._admin

    async def on_rebalance(self, assigned: Any, revoked: Any, newly_assigned: Any) -> None:
        self.wanted = {tp.partition for tp in assigned if tp.topic in self.hot_topics}
        old, self.producers = self.producers, {}
        await asyncio.gather(*(_stop(producer) for producer in old.values()))
        # All at once: one after another they took 0.3-3.5 s of every restart (issue 23).
        wanted = sorted(self.wanted)
        started = await asyncio.gather(*map(self._start, wanted), return_exceptions=True)
        failed = [result for result in started if isinstance(result, BaseException)]
        for partition, result in zip(wanted, started, strict=True):
            if isinstance(result, AIOKafkaProducer):
                self.producers[partition] = result
        if failed:
            await asyncio.gather(*(_stop(producer) for producer in self.producers.values()))
            self.producers.clear()
            refusal = next((f for f in failed if isinstance(f, HangingTransaction)), None)
            if refusal is not None:  # one line, with the command that ends it
                log.critical("refusing to rate: %s", refusal)
            raise refusal or failed[0]
        log.info("transactional producers for partitions %s", sorted(self.producers))

    async def drop(self, partition: int) -> None:
        """Stop a failed partition's producer; its next batch asks for a new one (:meth:`renew`)."""
        old = self.producers.pop(partition, None)
        if old is not None:
            await _stop(old)

    async def renew(self, partition: int) -> bool:
        """Replace the partition's producer after a failed batch; False if it is not ours."""
        await self.drop(partition)
        if partition not in self.wanted:
            return False
        self.producers[partition] = await self._start(partition)
        log.info("new transactional producer for partition %d", partition)
        return True

    async def settle(
        self, partition: int, written: Mapping[TopicPartition, tuple[int, int]]
    ) -> None:
        """Wait until a committed batch's records are stable on every partition it wrote."""
        producer = self.producers[partition]
        admin = await self.admin()
        await admin.settle(written, producer_id(producer))

    async def committed(
        self, partition: int, tp: TopicPartition, span: tuple[int, int]
    ) -> bool | None:
        """After a commit whose answer failed: was it committed? None if the partition is gone.

        A new producer's InitProducerId makes the coordinator finish what it
        recorded (a PrepareCommit is completed, an open transaction aborted),
        and then the batch's records on ``tp`` are either readable or not.
        """
        if not await self.renew(partition):
            return None
        admin = await self.admin()
        return await admin.visible(tp, span)

    async def _start(self, partition: int) -> AIOKafkaProducer:
        transactional_id = self.transactional_id(partition)
        admin = await self.admin()
        try:
            before = await admin.coordinator_view(transactional_id)
        except KafkaError as exc:  # the repair then refuses rather than guess
            log.warning("no coordinator state for %s: %r", transactional_id, exc)
            before = None
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            transactional_id=transactional_id,
            transaction_timeout_ms=60_000,
            linger_ms=5,
            max_batch_size=512 * 1024,
            max_request_size=8 * 1024 * 1024,
            **self.client_kwargs,
        )
        await producer.start()  # InitProducerId: the previous producer is fenced here
        await producer.begin_transaction()
        owned = [TopicPartition(topic, partition) for topic in self.written_topics]
        await admin.repair_owned(transactional_id, before, owned)
        return producer

    async def commit(self, offsets: Any, start_new_transaction: bool = True) -> bool:
        return True  # batches commit inline with their outputs; nothing else is acked

    async def on_stop(self) -> None:
        for producer in self.producers.values():
            await _stop(producer)
        self.producers.clear()
        if self._admin is not None:
            await self._admin.client.close()


async def _stop(producer: AIOKafkaProducer) -> None:
    """Stop a producer whose transaction is empty, ended or lost; never raise."""
    try:
        await asyncio.wait_for(producer.stop(), STOP_TIMEOUT_S)
    except Exception as exc:  # fenced, broken or unreachable: the next producer fences it
        log.info("transactional producer stopped uncleanly: %r", exc)
