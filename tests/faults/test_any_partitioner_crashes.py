"""kill -9 at a step of a batch that moves records to their tenant's partition (SPEC 11).

The crashing worker (tests/faults/crashing_worker.py) dies at ``rated`` (copies not
sent), ``sent`` (copies handed to the producer inside the open transaction) or
``committed`` (copies and marker committed, the local table not yet written) of
its third batch of crc32-placed input; a normal worker then finishes. The outputs
must equal the pure core's, with exactly one committed copy per misplaced record:
an aborted copy is invisible under read_committed and its original is moved again.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from rater.config import Settings
from rater.devkit.inputs import produce_inputs
from rater.devkit.partitioners import librdkafka_crc32
from rater.devkit.scenario import TARIFFS, build
from rater.devkit.worker_process import WorkerProcess
from tests.integration.test_any_partitioner import check_moves, misplaced
from tests.support.crash import crash_at
from tests.support.outputs_check import check, wait_for


@pytest.mark.parametrize("point", ["rated", "sent", "committed"])
async def test_kill_9_at_a_step_of_a_batch_that_moves_records(
    settings: Settings, tmp_path: Path, point: str
) -> None:
    """SIGKILL at one step of the third batch of crc32-placed input (copies handed to
    the producer but not committed at ``sent``), then a normal worker finishes."""
    settings = replace(settings, max_poll_records=25)
    scenario = build(cdrs_per_tenant=30, seed=zlib.crc32(point.encode()) % 1000)
    await produce_inputs(settings, scenario.messages, TARIFFS, place=librdkafka_crc32)
    crash_at(settings, tmp_path / "crash.log", point, 3, 120)
    survivor = WorkerProcess(settings, tmp_path / "worker.log")
    survivor.start()
    try:
        check(scenario, await wait_for(settings, scenario, survivor))
    finally:
        survivor.stop()
    await check_moves(settings, misplaced(scenario.messages, librdkafka_crc32, settings.partitions))
