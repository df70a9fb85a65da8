"""Two workers in one group: one stops mid-scenario, the other takes over, same result.

Both workers run the real `rater worker` command with the same app id (so the
same consumer group and transactional ids) and their own data directory. One
of them is stopped gracefully (SIGTERM) or killed (SIGKILL) while the scenario
is being rated; the survivor must take over its partitions and the outputs
must still equal the pure core's, record by record per tenant, every one valid
against its schema, no id seen twice by a ``read_committed`` consumer.

Which worker holds which partitions is read from the broker (DescribeGroups):
each worker gets its own Kafka client id (Faust reads ``BROKER_CLIENT_ID`` from
the environment) so the group's members can be told apart. Set
``RATER_WORKER_LOGLEVEL=info`` to get Faust's recovery tables in the worker
logs that a failure prints.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from rater.config import Settings
from rater.core.topics import OUTPUT_TOPICS as OUTPUTS
from rater.devkit.localkafka.readback import read_all
from rater.devkit.scenario import TARIFFS, Scenario, build
from rater.devkit.worker_process import WorkerProcess
from tests.integration.test_worker import check, outputs

INPUTS = ("cdrs", "account-events")
TENANTS = ("prepaid", "recharge", "nce", "switcher")  # one per partition of 4
T = TypeVar("T")




class Worker(WorkerProcess):
    """A worker with its own data directory and a Kafka client id naming its group member."""

    def __init__(self, settings: Settings, tmp_path: Path, name: str) -> None:
        self.client_id = f"{settings.app_id}-{name}"
        super().__init__(
            dataclasses.replace(settings, data_dir=tmp_path / f"data-{name}"),
            tmp_path / f"worker-{name}.log",
            env={"BROKER_CLIENT_ID": self.client_id},
        )

    def tail(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.log_path.name} (last 3000 chars) ---\n{text[-3000:]}"


class Inputs:
    """One producer for a whole scenario, in order, with increasing timestamps across parts.

    Like :func:`rater.devkit.inputs.produce_inputs`, but the timestamps keep
    increasing from one part to the next however quickly they are sent, so a
    worker that reads two parts in one batch still merges them in scenario order.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
        self.base = int(time.time() * 1000)
        self.sent = 0

    async def send(
        self, messages: Sequence[tuple[str, bytes, bytes]], tariffs: list[dict] | None = None
    ) -> None:
        for row in tariffs or []:
            await self.producer.send(
                self.settings.topic("tariffs"), orjson.dumps(row), key=row["tariff_id"].encode()
            )
        for topic, key, value in messages:
            # Each message is on the broker before the next is sent: the scenario's order
            # across the two topics is the order they reach Kafka. A batched producer can
            # retry one partition's batch (NotLeaderForPartition on fresh topics) after a
            # later batch of the other topic landed, and no consumer can undo that
            # (decisions.md, "Order across the two input topics").
            await self.producer.send_and_wait(
                self.settings.topic(topic), value, key=key, timestamp_ms=self.base + self.sent
            )
            self.sent += 1


@asynccontextmanager
async def inputs(settings: Settings) -> AsyncIterator[Inputs]:
    feed = Inputs(settings)
    await feed.producer.start()
    try:
        yield feed
    finally:
        await feed.producer.stop()


async def assignment(settings: Settings) -> tuple[str, dict[str, set[int]]]:
    """The group's state and the `cdrs` partitions of each member, by client id."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([settings.app_id])
    finally:
        await admin.close()
    [group] = response.to_object()["groups"]
    held: dict[str, set[int]] = {}
    for member in group["members"]:
        partitions = held.setdefault(member["client_id"], set())
        if member["member_assignment"]:
            decoded = ConsumerProtocolMemberAssignment.decode(member["member_assignment"])
            for topic, numbers in decoded.assignment:
                if topic == settings.topic("cdrs"):
                    partitions.update(numbers)
    return group["state"], held


async def committed_and_end(settings: Settings) -> tuple[dict, dict]:
    """The group's committed offsets and the end offsets of every input partition."""
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
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        end = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp: committed[tp].offset if tp in committed else -1 for tp in tps}, end


async def until(
    what: str,
    condition: Callable[[], Awaitable[T | None]],
    timeout: float,
    alive: Sequence[Worker],
    gone: Sequence[Worker] = (),
) -> T:
    """Poll ``condition`` until it returns something true; fail loudly at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = await condition()
        if result:
            return result
        for worker in alive:
            assert worker.alive(), f"{worker.client_id} died waiting for {what}\n{worker.tail()}"
        if time.monotonic() >= deadline:
            logs = "\n".join(w.tail() for w in [*alive, *gone])
            pytest.fail(f"no {what} after {timeout:.0f}s\n{logs}")
        await asyncio.sleep(0.2)  # poll interval; the loop exits on the condition above


def check_order_per_tenant(scenario: Scenario, got: dict[str, list]) -> None:
    """Each tenant's outputs on each topic come in the core's order, record by record."""
    for name in OUTPUTS:
        if name == "rater-dlq":
            continue  # positions differ on Kafka; `check` compares the codes
        expected: dict[str, list[dict]] = defaultdict(list)
        for _, value in scenario.expected.get(name, []):
            expected[value["tenant_id"]].append(value)
        actual: dict[str, list[dict]] = defaultdict(list)
        for record in got[name]:  # partition then offset order; a tenant is one partition
            value = orjson.loads(record.value)
            actual[value["tenant_id"]].append(value)
        for tenant in sorted(expected.keys() | actual.keys()):
            want, have = expected[tenant], actual[tenant]
            for i, (core, worker) in enumerate(zip(want, have, strict=False)):
                assert core == worker, f"{name}/{tenant} record {i}: core {core} != worker {worker}"
            assert len(want) == len(have), f"{name}/{tenant}: {len(have)} of {len(want)} records"


async def run_takeover(
    settings: Settings, tmp_path: Path, seed: int, stop: Callable[[Worker], None]
) -> Worker:
    """Two workers rate a scenario; ``stop`` ends one of them mid-way. Returns that one."""
    scenario = build(cdrs_per_tenant=60, seed=seed)
    third = len(scenario.messages) // 3
    parts = (
        scenario.messages[:third],
        scenario.messages[third : 2 * third],
        scenario.messages[2 * third :],
    )
    survivor, leaver = Worker(settings, tmp_path, "a"), Worker(settings, tmp_path, "b")
    both = [survivor, leaver]
    try:
        for worker in both:
            worker.start()

        async def both_hold_partitions() -> dict[str, set[int]] | None:
            state, held = await assignment(settings)
            everything = set(range(settings.partitions))
            ok = (
                state == "Stable"
                and held.keys() == {w.client_id for w in both}
                and all(held.values())
                and set().union(*held.values()) == everything
            )
            return held if ok else None

        held = await until("two members sharing the partitions", both_hold_partitions, 60, both)
        async with inputs(settings) as feed:
            await feed.send(parts[0], TARIFFS)

            async def every_tenant_rated() -> bool:
                seen = await read_all(settings.bootstrap_servers, settings.topic("rated-cdrs"))
                return {orjson.loads(r.value)["tenant_id"] for r in seen} >= set(TENANTS)

            # Each tenant is on its own partition, so both workers have committed output.
            await until("output from both workers", every_tenant_rated, 60, both)
            await feed.send(parts[1])  # on its way to both workers as one of them goes
            started = time.monotonic()
            stop(leaver)
            stopped_in = time.monotonic() - started
            assert not leaver.alive()
            await feed.send(parts[2])

        async def survivor_holds_all() -> bool:
            state, now = await assignment(settings)
            return state == "Stable" and now == {survivor.client_id: set(range(4))}

        await until("takeover of every partition", survivor_holds_all, 60, [survivor], [leaver])

        async def all_consumed() -> bool:
            committed, end = await committed_and_end(settings)
            return committed == end

        # Offsets are committed in the transaction of their batch's outputs and state.
        await until("input offsets committed to the end", all_consumed, 90, [survivor], [leaver])
        deadline = time.monotonic() + 30
        while True:  # the transaction markers of the last batches may land a moment apart
            got = await outputs(settings)
            complete = len(got["rater-dlq"]) >= len(scenario.rejected) and all(
                len(got[name]) >= len(scenario.expected.get(name, []))
                for name in OUTPUTS
                if name != "rater-dlq"
            )
            if complete or time.monotonic() >= deadline:
                break  # complete, or out of time: the checks below say what differs
            await asyncio.sleep(0.2)  # poll interval
        counts = {name: (len(got[name]), len(scenario.expected.get(name, []))) for name in OUTPUTS}
        counts["rater-dlq"] = (len(got["rater-dlq"]), len(scenario.rejected))
        try:
            check_order_per_tenant(scenario, got)
            check(scenario, got)
        except AssertionError as err:
            logs = "\n".join(w.tail() for w in both)
            raise AssertionError(
                f"{err}\n(got, expected) per topic: {counts}\n"
                f"partitions before {leaver.client_id} left: {held}\n{logs}"
            ) from err
        print(
            f"partitions before the stop: {held}; {leaver.client_id} gone in {stopped_in:.1f}s"
            f" with exit code {leaver.proc.returncode if leaver.proc else None}"
        )
        return leaver
    finally:
        for worker in both:
            worker.stop()


async def test_graceful_stop_the_other_worker_takes_over(
    settings: Settings, tmp_path: Path
) -> None:
    left = await run_takeover(settings, tmp_path, seed=21, stop=lambda w: w.stop(60))
    # It ended by itself and cleanly: `stop` falls back to SIGKILL after 60 s.
    assert left.proc is not None and left.proc.returncode == 0, left.tail()


async def test_kill_9_the_other_worker_takes_over_after_the_session_timeout(
    settings: Settings, tmp_path: Path
) -> None:
    left = await run_takeover(settings, tmp_path, seed=23, stop=lambda w: w.kill())
    assert left.proc is not None and left.proc.returncode == -signal.SIGKILL
