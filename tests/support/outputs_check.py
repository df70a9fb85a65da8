"""What a worker wrote, read back, and checked against the pure core's outputs for a scenario."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from jsonschema import Draft202012Validator

from rater.config import Settings
from rater.core.topics import OUTPUT_TOPICS as OUTPUTS
from rater.core.topics import TENANT_INPUTS
from rater.devkit.localkafka.readback import read_all
from rater.devkit.scenario import Scenario
from rater.devkit.worker_process import WorkerProcess

ID_FIELD = {
    "rated-cdrs": "cdr_id",
    "ledger": "entry_id",
    "topup-requests": "request_id",
    "overage": "overage_id",
    "notifications": "notification_id",
    "service-state": "state_id",
    "rater-dlq": "dlq_id",
}
SCHEMAS = {
    name: Draft202012Validator(json.loads((Path("schemas") / f"{name}.json").read_text()))
    for name in OUTPUTS
}
INPUTS = TENANT_INPUTS


async def group_offsets(settings: Settings) -> dict[TopicPartition, int | None]:
    """The worker group's committed offset of every input partition (None: none yet)."""
    tps = [
        TopicPartition(settings.topic(name), p)
        for name in INPUTS
        for p in range(settings.partitions)
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.app_id, partitions=tps)
    finally:
        await admin.close()
    return {tp: committed[tp].offset if tp in committed else None for tp in tps}


async def outputs(settings: Settings) -> dict[str, list]:
    return {
        name: await read_all(settings.bootstrap_servers, settings.topic(name)) for name in OUTPUTS
    }


async def consumed_everything(settings: Settings) -> bool:
    """Whether the group's committed offsets passed the last record of every input partition.

    The worker commits group offsets after a batch's transaction (decisions D19
    ("Group offsets outside the transaction")), so by then the outputs of every
    input record are committed: reading them now sees all there will be.
    """
    committed = await group_offsets(settings)
    # Past the last record, not the log end: records moved to their tenant's partition are
    # written in transactions, so a partition can end in a commit marker (SPEC 11).
    past_last: dict[TopicPartition, int] = {}
    for name in INPUTS:
        for record in await read_all(settings.bootstrap_servers, settings.topic(name)):
            tp = TopicPartition(record.topic, record.partition)
            past_last[tp] = max(past_last.get(tp, 0), record.offset + 1)
    return all(
        tp not in past_last or (offset is not None and offset >= past_last[tp])
        for tp, offset in committed.items()
    )


async def wait_for(
    settings: Settings, scenario: Scenario, worker: WorkerProcess, timeout: float = 180.0
) -> dict[str, list]:
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
            if all(
                len(got[name]) >= count for name, count in want.items()
            ) and await consumed_everything(settings):
                return await outputs(settings)
        assert worker.alive(), worker.log_path.read_text()[-3000:]
        if time.monotonic() >= deadline:
            got = await outputs(settings)
            counts = {name: (len(got[name]), count) for name, count in want.items()}
            raise AssertionError(
                f"(got, expected) after {timeout}s: {counts}, "
                f"input consumed: {await consumed_everything(settings)}"
            )
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
