"""A failed batch drops its partition's producer and backs off; repeated failures show."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, ProducerFenced

from rater.config import Settings
from rater.stream.health import FAILING_AFTER, FENCED_WAIT_S, RETRY_FIRST_S, RETRY_MAX_S
from rater.stream.partition import PartitionRater


class Producers:
    """Stands in for PartitionTransactions: which partitions were dropped and renewed."""

    def __init__(self, owned: set[int]) -> None:
        self.owned = owned
        self.producers: dict[int, Any] = {p: object() for p in owned}
        self.dropped: list[int] = []
        self.renewed: list[int] = []

    async def drop(self, partition: int) -> None:
        self.dropped.append(partition)
        self.producers.pop(partition, None)

    async def renew(self, partition: int) -> bool:
        self.renewed.append(partition)
        if partition in self.owned:
            self.producers[partition] = object()
        return partition in self.owned

    async def settle(self, partition: int, written: Any) -> None:
        raise AssertionError("not reached")

    async def committed(self, partition: int, tp: Any, span: Any) -> bool | None:
        raise AssertionError("not reached")


def rater(owned: set[int]) -> tuple[PartitionRater, Producers]:
    producers = Producers(owned)
    subject = PartitionRater(Settings(), None, None, "changelog", producers)  # type: ignore[arg-type]
    return subject, producers


async def test_each_failure_drops_the_producer_and_doubles_the_back_off() -> None:
    subject, producers = rater({0, 1})
    delays = []
    for _ in range(8):
        before = time.monotonic()
        await subject.failed(1, KafkaConnectionError("broker gone"))
        delays.append(subject.failing[1].retry_at - before)
    assert producers.dropped == [1] * 8
    assert producers.renewed == []  # a new producer waits for the partition's next batch
    assert subject.counters.failed_batches == 8
    assert abs(delays[0] - RETRY_FIRST_S) < 0.05
    assert abs(delays[1] - 2 * RETRY_FIRST_S) < 0.05
    assert abs(delays[-1] - RETRY_MAX_S) < 0.05  # capped


async def test_a_fenced_producer_waits_for_the_rebalance_before_a_new_one() -> None:
    subject, _ = rater({0})
    before = time.monotonic()
    await subject.failed(0, ProducerFenced())
    assert subject.failing[0].retry_at - before >= FENCED_WAIT_S - 0.05


async def test_the_next_batch_starts_a_new_producer_only_for_a_partition_still_owned() -> None:
    subject, producers = rater({0})
    await subject.failed(0, ProducerFenced())
    await subject.failed(3, ProducerFenced())
    assert await subject._producer(0) is producers.producers[0]
    assert subject.counters.renewed_producers == 1
    with pytest.raises(RuntimeError, match="partition 3 is not this worker's"):
        await subject._producer(3)
    assert producers.renewed == [0, 3]


async def test_the_worker_is_not_ready_only_while_a_partition_keeps_failing() -> None:
    subject, _ = rater({0, 1})
    for count in range(1, FAILING_AFTER + 1):
        assert subject.not_ready_reason() is None
        await subject.failed(0, ProducerFenced())
        assert subject.failing[0].count == count
    reason = subject.not_ready_reason()
    assert reason is not None and "partition 0 failed 3 batches in a row" in reason
    assert "ProducerFenced" in reason
    assert subject.failing_partitions()[0][0] == 0
    failed = subject.metrics.registry.get_sample_value("rater_failed_batches_total")
    assert failed == FAILING_AFTER
