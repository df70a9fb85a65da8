"""A commit that raises: replayed when it was not committed, kept when it was.

aiokafka can report a failed commit that the coordinator did record (its
sender dies on a connection closed while it looks the coordinator up again;
docs/decisions.md D31 ("Fenced producers")). A worker that replayed such a batch
would publish its outputs twice; one that skipped a batch that was really
aborted would lose them. The worker here raises a connection error once at a
named step of its third batch and must end with exactly the core's outputs.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from rater.config import Settings
from rater.devkit.inputs import produce_inputs
from rater.devkit.scenario import TARIFFS, build
from rater.devkit.worker_process import WorkerProcess
from tests.support.group import check_order_per_tenant
from tests.support.outputs_check import check, wait_for
from tests.support.stable import open_partitions


@pytest.mark.parametrize(
    ("point", "log_line"),
    [
        # Not committed: replayed by a new producer, started for the partition alone
        # or, when a rebalance came first, with the others of the new assignment.
        ("sent", r"new transactional producer|transactional producers for partitions"),
        ("committed", r"but was committed"),  # committed although it raised: kept
    ],
)
async def test_a_commit_that_raises_is_neither_lost_nor_doubled(
    settings: Settings, tmp_path: Path, point: str, log_line: str
) -> None:
    settings = replace(settings, max_poll_records=25)
    scenario = build(cdrs_per_tenant=40, seed=41)
    await produce_inputs(settings, scenario.messages, TARIFFS)
    worker = WorkerProcess(
        settings,
        tmp_path / "worker.log",
        module="tests.faults.crashing_worker",
        env={
            "RATER_CRASH_AT": point,
            "RATER_CRASH_AFTER": "3",
            "RATER_CRASH_MODE": "raise",
            "RATER_WORKER_LOGLEVEL": "info",  # the producer lines are info
        },
    )
    worker.start()
    try:
        got = await wait_for(settings, scenario, worker)
        check_order_per_tenant(scenario, got)
        check(scenario, got)
        assert await open_partitions(settings) == {}
    finally:
        worker.stop()
    log = worker.log_path.read_text()
    failure = f"failing at {point} (time 3)"
    assert failure in log
    after = log[log.index(failure) :]
    assert re.search(log_line, after), after[-3000:]
