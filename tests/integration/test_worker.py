"""The worker on the real broker: the same outputs as the pure core."""

from __future__ import annotations

from pathlib import Path

from rater.config import Settings
from rater.devkit.inputs import produce_inputs
from rater.devkit.scenario import TARIFFS, build
from rater.devkit.worker_process import WorkerProcess
from tests.support.outputs_check import check, wait_for


async def test_worker_output_equals_the_core(settings: Settings, tmp_path: Path) -> None:
    scenario = build()
    await produce_inputs(settings, scenario.messages, TARIFFS)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        check(scenario, await wait_for(settings, scenario, worker))
    finally:
        worker.stop()
