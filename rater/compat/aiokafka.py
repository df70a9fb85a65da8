"""aiokafka 0.14.0's private parts the shell reads or sets (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


def producer_id(producer: AIOKafkaProducer) -> int:
    """The id the coordinator gave a transactional producer (for DescribeProducers)."""
    return int(producer._txn_manager.producer_id)


def add_partitions_to_txn(producer: AIOKafkaProducer, partitions: Iterable[TopicPartition]) -> None:
    """Queue AddPartitionsToTxn now, before the first record for them is sent.

    aiokafka adds a partition when a batch for it is drained; adding them at
    the start of a batch lets the request travel with the first records
    (docs/decisions.md D10, "Records go out in batches").
    """
    manager = producer._txn_manager
    for tp in sorted(partitions):
        manager.maybe_add_partition_to_txn(tp)


def set_fetch_max_wait(consumer: AIOKafkaConsumer, ms: int) -> None:
    """How long the broker may hold an empty fetch; read by ``start()``, so set it before."""
    consumer._fetch_max_wait_ms = ms


def fetch_state(consumer: AIOKafkaConsumer, tp: TopicPartition) -> Any:
    """An assigned partition's fetch state (position, lso, timestamp of the last answer).

    Read directly because the public ``position()`` is a coroutine and this
    runs for every batch. Raises when ``tp`` is not assigned.
    """
    return consumer._subscription.subscription.assignment.state_value(tp)


def member_id(consumer: AIOKafkaConsumer) -> str:
    """The consumer's current group member id ("" before it has one)."""
    coordinator = getattr(consumer, "_coordinator", None)
    return "" if coordinator is None else str(coordinator.member_id or "")


async def refresh_metadata(consumer: AIOKafkaConsumer) -> Any:
    """Ask the cluster for fresh metadata now (a consumer without subscriptions keeps none)."""
    return await consumer._client.fetch_all_metadata()


async def update_metadata(consumer: AIOKafkaConsumer) -> None:
    """Refresh the consumer's own cluster view (``partitions_for_topic`` reads it)."""
    await consumer._client.force_metadata_update()
