"""faust-streaming 0.15.3's private parts the shell reads or calls (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer


def aiokafka_consumer(consumer: Any) -> AIOKafkaConsumer:
    """The aiokafka consumer behind a Faust consumer (created on first use)."""
    return consumer._thread._ensure_consumer()


def changelog_table(app: Any, topic: str) -> Any:
    """The table whose changelog is ``topic``, or None."""
    return app.tables._changelogs.get(topic)


def partition_db(store: Any, partition: int) -> Any:
    """A RocksDB store's Rdict for one partition; never kept, as Faust may reopen it."""
    return store._db_for_partition(partition)


def is_stopped(service: Any) -> bool:
    """True once a Faust service (the consumer, its fetcher) was told to stop."""
    return bool(service._stopped.is_set())


def active_partitions(consumer: Any) -> Any:
    """The partitions Faust lets the consumer fetch now (not paused, flow active)."""
    return consumer._get_active_partitions()


async def getmany(consumer: Any, partitions: Any, timeout: float) -> Mapping[Any, list[Any]]:
    """Fetched records of ``partitions``, as Faust's own drain loop asks for them."""
    records: Mapping[Any, list[Any]] = await consumer._getmany(
        active_partitions=partitions, timeout=timeout
    )
    return records


def to_message(consumer: Any, tp: Any, record: Any) -> Any:
    """A fetched record as the Faust message its stream callback expects."""
    return consumer._to_message(tp, record)


async def open_table_channels(manager: Any) -> None:
    """What ``TableManager.on_start`` does before recovery: subscribe the changelogs."""
    await manager._update_channels()
