"""Hanging transactions made on purpose: the rater ends them when it can tell how, else refuses.

A hanging transaction is one the partition's leader holds open while the
coordinator does not know the partition is in it (docs/decisions.md D29
("Hanging transactions")): no timeout or fencing ever ends it, and every
``read_committed`` reader of the partition stops there. ``hang_transaction``
makes one the way a lost AddPartitionsToTxn would.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient

from rater.config import Settings
from rater.devkit.inputs import produce_inputs
from rater.devkit.localkafka.readback import read_all
from rater.devkit.scenario import TARIFFS, build
from rater.devkit.worker_process import WorkerProcess
from rater.stream.stability import HangingTransaction, TransactionAdmin
from tests.support.hanging import hang_transaction
from tests.support.outputs_check import check, wait_for
from tests.support.stable import open_partitions

INJECTED = orjson.dumps({"injected": True})


async def admin_for(bootstrap: str) -> TransactionAdmin:
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    return TransactionAdmin(client, bootstrap)


def without_injected(got: dict[str, list]) -> dict[str, list]:
    return {name: [r for r in records if r.value != INJECTED] for name, records in got.items()}


async def test_settle_commits_the_open_share_of_a_committed_batch(
    settings: Settings,
) -> None:
    """A batch committed everywhere but on one partition: settle commits it there too."""
    hanging = TopicPartition(settings.topic("rated-cdrs"), 1)
    elsewhere = TopicPartition(settings.topic("ledger"), 1)
    tid = f"{settings.app_id}-probe"
    first = await hang_transaction(
        settings.bootstrap_servers, tid, hanging, [(b"t", INJECTED)] * 3, elsewhere
    )
    admin = await admin_for(settings.bootstrap_servers)
    try:
        [txn] = await admin.open_transactions(hanging)
        assert txn.start_offset == first
        assert (await admin.offsets([hanging]))[hanging] == first  # the LSO is stuck there
        with pytest.raises(HangingTransaction, match="another producer's"):
            await admin.settle({hanging: (first, first + 2)}, txn.producer_id + 1, 0.2)
        with pytest.raises(HangingTransaction, match="began before this batch"):
            await admin.settle({hanging: (first + 1, first + 2)}, txn.producer_id, 0.2)
        await admin.settle({hanging: (first, first + 2)}, txn.producer_id, stuck_after_s=0.2)
        assert (await admin.offsets([hanging]))[hanging] > first + 2
    finally:
        await admin.client.close()
    visible = await read_all(settings.bootstrap_servers, hanging.topic)
    assert [r.value for r in visible if r.partition == 1] == [INJECTED] * 3


async def test_worker_commits_a_hanging_share_the_coordinator_committed(
    settings: Settings, tmp_path: Path
) -> None:
    """The coordinator recorded CompleteCommit for the hanging epoch: the worker commits it."""
    hanging = TopicPartition(settings.topic("rated-cdrs"), 0)
    elsewhere = TopicPartition(settings.topic("service-state"), 0)
    await hang_transaction(
        settings.bootstrap_servers,
        f"{settings.app_id}-rater-0",  # the worker's own transactional id for partition 0
        hanging,
        [(b"t", INJECTED)],
        elsewhere,
    )
    scenario = build(cdrs_per_tenant=30, seed=5)
    await produce_inputs(settings, scenario.messages, TARIFFS)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        check(scenario, without_injected(await wait_for(settings, scenario, worker)))
        assert await open_partitions(settings) == {}
    finally:
        worker.stop()
    log = worker.log_path.read_text()
    assert f"ended a hanging transaction on {hanging.topic}-0 from offset 0 with COMMIT" in log
    visible = await read_all(settings.bootstrap_servers, hanging.topic)
    assert [r.value for r in visible if r.value == INJECTED] == [INJECTED]


async def test_worker_refuses_a_hanging_transaction_of_unknown_outcome(
    settings: Settings, tmp_path: Path
) -> None:
    """The hanging epoch is no longer the coordinator's: the worker names it and the fix."""
    hanging = TopicPartition(f"{settings.app_id}-tenants-changelog", 2)
    start = await hang_transaction(
        settings.bootstrap_servers,
        f"{settings.app_id}-rater-2",
        hanging,
        [(b"t", INJECTED)],
        bump_epoch_after=True,
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        assert worker.wait(timeout=180) != 0
    finally:
        worker.kill()
    log = worker.log_path.read_text()
    lines = [line for line in log.splitlines() if "refusing to rate" in line]
    assert len(lines) == 1, log[-3000:]
    assert (
        f"kafka-transactions.sh --bootstrap-server {settings.bootstrap_servers} abort "
        f"--topic {hanging.topic} --partition 2 --start-offset {start}"
    ) in lines[0]
    admin = await admin_for(settings.bootstrap_servers)
    try:  # what kafka-transactions.sh abort does: an ABORT marker for that producer and epoch
        [txn] = await admin.open_transactions(hanging)
        await admin.end(txn, commit=False)
    finally:
        await admin.client.close()
    scenario = build(cdrs_per_tenant=20, seed=6)
    await produce_inputs(settings, scenario.messages, TARIFFS)
    worker = WorkerProcess(settings, tmp_path / "again.log")
    worker.start()
    try:
        check(scenario, await wait_for(settings, scenario, worker))
        assert await open_partitions(settings) == {}
    finally:
        worker.stop()
    changelog = await read_all(settings.bootstrap_servers, hanging.topic)
    assert not [r for r in changelog if r.value == INJECTED]
