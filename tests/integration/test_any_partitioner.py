"""Input written by other clients' partitioners (SPEC 11): same outputs as the core, on the broker.

The scenario of test_worker.py is produced to the partitions librdkafka
(crc32) or sarama (fnv-1a) would choose, not the Java client's murmur2 that
places tenant state. The worker must move each misplaced record to its
tenant's partition exactly once and rate it there as if it had been written
there: every output equal to the pure core's, no id twice, with and
without a kill -9 in the middle.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from rater.config import Settings
from rater.devkit.inputs import produce_inputs
from rater.devkit.localkafka.readback import read_all
from rater.devkit.partitioners import Partitioner, librdkafka_crc32, sarama_fnv1a
from rater.devkit.scenario import TARIFFS, build
from rater.devkit.worker_process import WorkerProcess
from rater.stream.placement import MOVED_FROM, partition_of
from tests.support.outputs_check import check, wait_for

PARTITIONERS = {"crc32": librdkafka_crc32, "fnv1a": sarama_fnv1a}


def misplaced(messages: list[tuple[str, bytes, bytes]], place: Partitioner, n: int) -> Counter:
    """How many messages per topic ``place`` puts elsewhere than their tenant's partition."""
    return Counter(topic for topic, key, _ in messages if place(key, n) != partition_of(key, n))


async def check_moves(settings: Settings, expected: Counter) -> None:
    """Each misplaced record has exactly one committed copy, at home, with its timestamp."""
    n = settings.partitions
    for name in ("cdrs", "account-events"):
        records = await read_all(settings.bootstrap_servers, settings.topic(name))
        by_position = {(r.partition, r.offset): r for r in records}
        copies = [r for r in records if any(h == MOVED_FROM for h, _ in r.headers)]
        assert len(copies) == expected[name], f"{name}: {len(copies)} copies"
        origins = Counter(dict(copy.headers)[MOVED_FROM] for copy in copies)
        assert all(count == 1 for count in origins.values()), f"{name}: moved twice"
        for copy in copies:
            topic, partition, offset = dict(copy.headers)[MOVED_FROM].decode().rsplit(":", 2)
            original = by_position[(int(partition), int(offset))]
            assert topic == settings.topic(name)
            assert copy.partition == partition_of(copy.key, n) != original.partition
            assert (copy.key, copy.value, copy.timestamp) == (
                original.key,
                original.value,
                original.timestamp,
            )


@pytest.mark.parametrize("partitioner", sorted(PARTITIONERS))
async def test_records_on_other_partitions_are_rated_as_at_home(
    settings: Settings, tmp_path: Path, partitioner: str
) -> None:
    place = PARTITIONERS[partitioner]
    scenario = build(seed=23)
    moves = misplaced(scenario.messages, place, settings.partitions)
    assert moves["cdrs"] and moves["account-events"], "the scenario must test moves"
    await produce_inputs(settings, scenario.messages, TARIFFS, place=place)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        check(scenario, await wait_for(settings, scenario, worker))
    finally:
        worker.stop()
    await check_moves(settings, moves)


@pytest.mark.parametrize("partitioner", sorted(PARTITIONERS))
async def test_kill_9_while_moving_loses_and_doubles_nothing(
    settings: Settings, tmp_path: Path, partitioner: str
) -> None:
    place = PARTITIONERS[partitioner]
    scenario = build(cdrs_per_tenant=60, seed=29)
    half = len(scenario.messages) // 2
    await produce_inputs(settings, scenario.messages[:half], TARIFFS, place=place)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while not await read_all(settings.bootstrap_servers, settings.topic("rated-cdrs")):
            assert time.monotonic() < deadline and worker.alive(), worker.log_path.read_text()
            await asyncio.sleep(0.2)  # poll interval
        worker.kill()
        await produce_inputs(settings, scenario.messages[half:], place=place)
        worker.start()
        check(scenario, await wait_for(settings, scenario, worker))
    finally:
        worker.stop()
    await check_moves(settings, misplaced(scenario.messages, place, settings.partitions))
