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
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from jsonschema import Draft202012Validator

from rater.config import Settings
from rater.core.topics import OUTPUT_TOPICS as OUTPUTS
from rater.devkit.inputs import produce_inputs
from rater.devkit.localkafka.readback import read_all
from rater.devkit.scenario import TARIFFS, Scenario, build
from rater.devkit.worker_process import WorkerProcess

ID_FIELD = {"rated-cdrs": "cdr_id", "ledger": "entry_id", "topup-requests": "request_id",
            "overage": "overage_id", "notifications": "notification_id",
            "service-state": "state_id", "rater-dlq": "dlq_id"}
SCHEMAS = {
    name: Draft202012Validator(json.loads((Path("schemas") / f"{name}.json").read_text()))
    for name in OUTPUTS
}
INPUTS = ("cdrs", "account-events")


async def outputs(settings: Settings) -> dict[str, list]:
    return {name: await read_all(settings.bootstrap_servers, settings.topic(name))
            for name in OUTPUTS}


async def consumed_everything(settings: Settings) -> bool:
    """Whether the group's committed offsets passed the last record of every input partition.

    The worker commits group offsets after a batch's transaction (decisions:
    "Group offsets outside the transaction"), so by then the outputs of every
    input record are committed: reading them now sees all there will be.
    """
    tps = [TopicPartition(settings.topic(name), p)
           for name in INPUTS for p in range(settings.partitions)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.app_id, partitions=tps)
    finally:
        await admin.close()
    # Past the last record, not the log end: records moved to their tenant's partition are
    # written in transactions, so a partition can end in a commit marker (SPEC 11).
    past_last: dict[TopicPartition, int] = {}
    for name in INPUTS:
        for record in await read_all(settings.bootstrap_servers, settings.topic(name)):
            tp = TopicPartition(record.topic, record.partition)
            past_last[tp] = max(past_last.get(tp, 0), record.offset + 1)
    return all(tp not in past_last or (tp in committed and committed[tp].offset >= past_last[tp])
               for tp in tps)


async def wait_for(settings: Settings, scenario: Scenario, worker: WorkerProcess,
                   timeout: float = 180.0) -> dict[str, list]:
    """Poll until every expected record is there and the input is consumed (or fail).

    Every topic counts, not only `rated-cdrs`: the scenario may end with a
    payment answer that is applied after the last CDR, in a later batch. The
    outputs are read again once the group has consumed all input (settled), so
    a record written twice or late is seen by the check.
    """
    want = {name: len(scenario.expected.get(name, [])) for name in OUTPUTS}
    want["rater-dlq"] = len(scenario.rejected)
    deadline = time.monotonic() + timeout
    while True:
        seen = await read_all(settings.bootstrap_servers, settings.topic("rated-cdrs"))
        if len(seen) >= want["rated-cdrs"]:
            got = await outputs(settings)
            if (all(len(got[name]) >= count for name, count in want.items())
                    and await consumed_everything(settings)):
                return await outputs(settings)
        assert worker.alive(), worker.log_path.read_text()[-3000:]
        if time.monotonic() >= deadline:
            got = await outputs(settings)
            counts = {name: (len(got[name]), count) for name, count in want.items()}
            raise AssertionError(f"(got, expected) after {timeout}s: {counts}, "
                                 f"input consumed: {await consumed_everything(settings)}")
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
        # a tenant's records in the order the core made them (read_all gives each
        # partition in offset order, and a tenant lives on one partition)
        for tenant in {v["tenant_id"] for v in expected}:
            got_order = [v[ID_FIELD[name]] for v in values if v["tenant_id"] == tenant]
            want_order = [v[ID_FIELD[name]] for v in expected if v["tenant_id"] == tenant]
            assert got_order == want_order, f"{name}: {tenant}'s records out of order"


async def uncommitted_records(settings: Settings) -> int:
    """Records of this test's topics inside a transaction that is still open.

    read_uncommitted shows them, read_committed stops before them: after a
    SIGKILL mid-batch the difference is what the next owner must abort.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
    finally:
        await admin.close()
    assert topics, settings.topic_prefix
    open_records = 0
    for topic in topics:
        every = await read_all(settings.bootstrap_servers, topic, "read_uncommitted")
        stable = await read_all(settings.bootstrap_servers, topic, "read_committed")
        open_records += len(every) - len(stable)
    return open_records


async def committed_rated(settings: Settings) -> int:
    return len(await read_all(settings.bootstrap_servers, settings.topic("rated-cdrs")))


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
    crashing = WorkerProcess(
        settings, tmp_path / "crash.log", module="tests.faults.crashing_worker",
        env={"RATER_CRASH_AT": "sent", "RATER_CRASH_AFTER": "2"},
    )
    crashing.start()
    try:
        assert crashing.wait(timeout=180) == -signal.SIGKILL, crashing.log_path.read_text()
    finally:
        crashing.kill()
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
        await produce_inputs(settings, resent.messages[len(scenario.messages):])
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
    crashing = WorkerProcess(
        settings, tmp_path / "crash.log", module="tests.faults.crashing_worker",
        env={"RATER_CRASH_AT": point, "RATER_CRASH_AFTER": "3"},
    )
    crashing.start()
    try:
        assert crashing.wait(timeout=180) == -signal.SIGKILL, crashing.log_path.read_text()
    finally:
        crashing.kill()
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
