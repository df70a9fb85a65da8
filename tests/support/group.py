"""Two workers and a changing group: who owns what, committed ends, per-tenant order."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from rater.config import Settings
from rater.core.topics import OUTPUT_TOPICS as OUTPUTS
from rater.devkit.scenario import Scenario
from rater.devkit.worker_process import WorkerProcess
from tests.support.outputs_check import group_offsets

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
            # (decisions.md D27 ("Order across the two input topics")).
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
    committed = await group_offsets(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        end = await consumer.end_offsets(list(committed))
    finally:
        await consumer.stop()
    return {tp: -1 if offset is None else offset for tp, offset in committed.items()}, end


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
