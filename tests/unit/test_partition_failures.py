"""A failed batch renews its partition's producer and backs off; repeated failures show."""

from __future__ import annotations

import time
from typing import Any

from aiokafka.errors import ProducerFenced

from rater.stream.partition import FAILING_AFTER, RETRY_FIRST_S, RETRY_MAX_S, PartitionRater
from rater.stream.settings import Settings


class Producers:
    """Stands in for PartitionTransactions: records which partitions were renewed."""

    def __init__(self, owned: set[int]) -> None:
        self.owned = owned
        self.producers: dict[int, Any] = {p: object() for p in owned}
        self.renewed: list[int] = []

    async def renew(self, partition: int) -> bool:
        self.renewed.append(partition)
        return partition in self.owned

    async def settle(self, partition: int, written: Any) -> None:
        raise AssertionError("not reached")


def rater(owned: set[int]) -> tuple[PartitionRater, Producers]:
    producers = Producers(owned)
    return PartitionRater(Settings(), None, None, "changelog", producers), producers  # type: ignore[arg-type]


async def test_each_failure_renews_the_producer_and_doubles_the_back_off() -> None:
    subject, producers = rater({0, 1})
    delays = []
    for _ in range(8):
        before = time.monotonic()
        await subject.failed(1, ProducerFenced())
        delays.append(subject.failing[1].retry_at - before)
    assert producers.renewed == [1] * 8
    assert subject.counters.renewed_producers == 8
    assert subject.counters.failed_batches == 8
    assert abs(delays[0] - RETRY_FIRST_S) < 0.05
    assert abs(delays[1] - 2 * RETRY_FIRST_S) < 0.05
    assert abs(delays[-1] - RETRY_MAX_S) < 0.05  # capped


async def test_a_partition_no_longer_owned_is_let_go() -> None:
    subject, producers = rater({0})
    await subject.failed(3, ProducerFenced())
    assert producers.renewed == [3]
    assert subject.counters.renewed_producers == 0


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
