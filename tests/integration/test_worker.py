"""The worker on the real broker: same outputs as the core, across kill -9 and restarts."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import zlib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from rater.core.outputs import OUTPUT_TOPICS as OUTPUTS
from rater.localkafka.readback import read_all
from rater.ops.inputs import produce_inputs
from rater.ops.scenario import TARIFFS, Scenario, build
from rater.ops.worker_process import WorkerProcess
from rater.stream.settings import Settings

ID_FIELD = {"rated-cdrs": "cdr_id", "ledger": "entry_id", "topup-requests": "request_id",
            "overage": "overage_id", "notifications": "notification_id",
            "service-state": "state_id", "rater-dlq": "dlq_id"}
SCHEMAS = {
    name: Draft202012Validator(json.loads((Path("schemas") / f"{name}.json").read_text()))
    for name in OUTPUTS
}




async def outputs(settings: Settings) -> dict[str, list]:
    return {name: await read_all(settings.bootstrap_servers, settings.topic(name))
            for name in OUTPUTS}


async def wait_for(settings: Settings, scenario: Scenario, worker: WorkerProcess,
                   timeout: float = 120.0) -> dict[str, list]:
    """Poll the output topics until every expected record is there (or fail).

    Every topic counts, not only `rated-cdrs`: the scenario may end with a
    payment answer that is applied after the last CDR, in a later batch.
    """
    want = {name: len(scenario.expected.get(name, [])) for name in OUTPUTS}
    want["rater-dlq"] = len(scenario.rejected)
    deadline = time.monotonic() + timeout
    while True:
        seen = await read_all(settings.bootstrap_servers, settings.topic("rated-cdrs"))
        if len(seen) >= want["rated-cdrs"]:
            got = await outputs(settings)
            if all(len(got[name]) >= count for name, count in want.items()):
                return got
        assert worker.alive(), worker.log_path.read_text()[-3000:]
        if time.monotonic() >= deadline:
            got = await outputs(settings)
            counts = {name: (len(got[name]), count) for name, count in want.items()}
            raise AssertionError(f"(got, expected) after {timeout}s: {counts}")
        await asyncio.sleep(0.5)  # poll interval; the loop exits on the conditions above


def check(scenario: Scenario, got: dict[str, list]) -> None:
    for name in OUTPUTS:
        values = [orjson.loads(record.value) for record in got[name]]
        for value in values:
            SCHEMAS[name].validate(value)
        ids = [value[ID_FIELD[name]] for value in values]
        assert len(ids) == len(set(ids)), f"{name}: an id was seen twice"
        if name == "rater-dlq":
            assert Counter(v["error"]["code"] for v in values) == Counter(scenario.rejected)
            continue
        expected = [v for _, v in scenario.expected.get(name, [])]
        assert _canonical(values) == _canonical(expected), _difference(name, values, expected)
        keys = {record.key for record in got[name]}
        assert keys <= {v["tenant_id"].encode() for v in values}


def _canonical(values: list[dict]) -> list[bytes]:
    return sorted(orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in values)


def _difference(name: str, actual: list[dict], expected: list[dict]) -> str:
    """The records that differ, by id: a failure must say which call went wrong and how."""
    field = ID_FIELD[name]
    got = {v[field]: v for v in actual}
    want = {v[field]: v for v in expected}
    lines = [f"{name}: {len(actual)} records, {len(expected)} expected"]
    for key in sorted(set(got) | set(want), key=str):
        if got.get(key) != want.get(key):
            lines.append(f"  {key}: got {got.get(key)} expected {want.get(key)}")
        if len(lines) > 12:
            break
    return "\n".join(lines)


async def test_worker_output_equals_the_core(settings: Settings, tmp_path: Path) -> None:
    scenario = build()
    await produce_inputs(settings, scenario.messages, TARIFFS)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        check(scenario, await wait_for(settings, scenario, worker))
    finally:
        worker.stop()


async def test_kill_9_mid_scenario_loses_and_doubles_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    scenario = build(cdrs_per_tenant=60, seed=11)
    half = len(scenario.messages) // 2
    await produce_inputs(settings, scenario.messages[:half], TARIFFS)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while not await read_all(settings.bootstrap_servers, settings.topic("rated-cdrs")):
            assert time.monotonic() < deadline and worker.alive()
            await asyncio.sleep(0.2)  # poll interval
        worker.kill()
        await produce_inputs(settings, scenario.messages[half:])
        worker.start()
        check(scenario, await wait_for(settings, scenario, worker))
        worker.stop()  # graceful stop and a restart change nothing either
        worker.start()
        await produce_inputs(settings, scenario.messages[:10])  # duplicates of applied messages
        await asyncio.sleep(0)  # nothing to wait for: the next check reads what is committed
        check(scenario, await wait_for(settings, scenario, worker))
    finally:
        worker.stop()


CRASH_POINTS = ["rated", "state_written", "sent", "committed", "stored"]


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
    crashing = WorkerProcess(
        settings, tmp_path / "crash.log", module="tests.faults.crashing_worker",
        env={"RATER_CRASH_AT": point, "RATER_CRASH_AFTER": "3"},
    )
    crashing.start()
    try:
        assert crashing.wait(timeout=120) == -signal.SIGKILL, crashing.log_path.read_text()
    finally:
        crashing.kill()
    assert f"crashing at {point}" in crashing.log_path.read_text()
    survivor = WorkerProcess(settings, tmp_path / "worker.log")
    survivor.start()
    try:
        check(scenario, await wait_for(settings, scenario, survivor))
    finally:
        survivor.stop()
