"""kill -9 of a worker inside a batch: nothing lost, nothing doubled (hook: crashing_worker.py)."""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from rater.config import Settings
from rater.devkit.inputs import produce_inputs
from rater.devkit.scenario import TARIFFS, build
from rater.devkit.worker_process import WorkerProcess
from tests.support.crash import crash_at
from tests.support.outputs_check import check, committed_rated, uncommitted_records, wait_for


async def test_kill_9_mid_scenario_loses_and_doubles_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    """SIGKILL inside a batch of the first half, then more input, a restart and re-sends.

    The kill is the crashing worker's, at the second ``sent`` step (outputs
    flushed, transaction open): a kill from outside could land after the
    first half was done and prove nothing.
    """
    settings = replace(settings, max_poll_records=25)
    scenario = build(cdrs_per_tenant=60, seed=11)
    resent = build(cdrs_per_tenant=60, seed=11, resend=10)  # + the first 10 messages again
    half = len(scenario.messages) // 2
    await produce_inputs(settings, scenario.messages[:half], TARIFFS)
    crash_at(settings, tmp_path / "crash.log", "sent", 2, 180)
    assert await uncommitted_records(settings) > 0, "the kill left no open transaction"
    assert await committed_rated(settings) < len(scenario.expected["rated-cdrs"])
    await produce_inputs(settings, scenario.messages[half:])
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        check(scenario, await wait_for(settings, scenario, worker))
        worker.stop()  # graceful stop and a restart change nothing either
        worker.start()
        # re-sent messages: 4 opens and purchases ignored as duplicates, 6 too_late
        # (more than 35 days behind their tenant's clock by now), nothing else
        await produce_inputs(settings, resent.messages[len(scenario.messages) :])
        assert Counter(resent.rejected) - Counter(scenario.rejected) == {"too_late": 6}
        check(resent, await wait_for(settings, resent, worker))
    finally:
        worker.stop()


CRASH_POINTS = ["rated", "state_written", "sent", "committed", "stored"]
# the steps after which the open transaction holds records (the crashing worker
# flushes the producer before it dies)
LEAVES_OPEN_RECORDS = {"state_written", "sent"}


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_kill_9_at_each_step_of_a_batch(
    settings: Settings, tmp_path: Path, point: str
) -> None:
    """SIGKILL at one step of the third batch, then a normal worker finishes the scenario.

    Small polls make many batches, so the crash lands mid-scenario with
    committed batches before it and uncommitted input after it.
    """
    settings = replace(settings, max_poll_records=25)
    scenario = build(cdrs_per_tenant=40, seed=zlib.crc32(point.encode()) % 1000)
    await produce_inputs(settings, scenario.messages, TARIFFS)
    crashing = crash_at(settings, tmp_path / "crash.log", point, 3, 180)
    assert f"crashing at {point}" in crashing.log_path.read_text()
    # the kill came mid-scenario: work left to do, and an open transaction to abort
    assert await committed_rated(settings) < len(scenario.expected["rated-cdrs"])
    if point in LEAVES_OPEN_RECORDS:
        assert await uncommitted_records(settings) > 0, "the kill left no open transaction"
    survivor = WorkerProcess(settings, tmp_path / "worker.log")
    survivor.start()
    try:
        check(scenario, await wait_for(settings, scenario, survivor))
    finally:
        survivor.stop()
