"""Creating topics and waiting until they are usable: shared by tests and tooling."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from rater.stream.topics import TopicSpec

T = TypeVar("T")


async def create_topics(
    bootstrap: str, specs: Iterable[TopicSpec], timeout: float = 30.0, exist_ok: bool = False
) -> None:
    """Create topics and return once every partition has a leader that serves it."""
    specs = list(specs)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication, topic_configs=dict(s.config))
                for s in specs
            ],
            timeout_ms=int(timeout * 1000),
        )
        for item in response.topic_errors:
            name, code = item[0], item[1]
            if code == 0 or (exist_ok and code == TopicAlreadyExistsError.errno):
                continue
            message = item[2] if len(item) > 2 and item[2] else ""
            raise for_code(code)(f"creating topic {name}: {message}".rstrip(": "))
        await _wait_for_leaders(admin, {s.name: s.partitions for s in specs}, timeout)
    finally:
        await admin.close()
    await _wait_until_served(bootstrap, specs, timeout)


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, expected: dict[str, int], timeout: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        ready = {
            t["topic"]
            for t in await admin.describe_topics(list(expected))
            if t["error_code"] == 0
            and len(t["partitions"]) >= expected[t["topic"]]
            and all(p["leader"] >= 0 for p in t["partitions"])
        }
        if ready >= expected.keys():
            return
        if loop.time() >= deadline:
            missing = sorted(set(expected) - ready)
            raise TimeoutError(f"topics without leaders after {timeout:.0f}s: {missing}")
        await asyncio.sleep(0.1)  # poll interval for the readiness condition above


async def _wait_until_served(bootstrap: str, specs: list[TopicSpec], timeout: float) -> None:
    """Wait until every partition answers ListOffsets (the consumer retries until then).

    Metadata can name a leader before that broker serves the partition; without this wait
    the first produces log NotLeaderForPartition retries.
    """
    tps = [TopicPartition(s.name, p) for s in specs for p in range(s.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    async with consumer:
        await consumer.end_offsets(tps)


class TopicFactory:
    """Topic names unique to one test (`<prefix><base>`), created on a given broker.

    Unique names let tests share one long-lived broker without seeing each other's data.
    """

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    async def create(
        self, base: str, partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> str:
        """Create `<prefix><base>` and return its full name, ready for producers."""
        spec = TopicSpec(self.name(base), partitions, 1, dict(config or {}))
        await create_topics(self.bootstrap, [spec])
        return spec.name

    def create_sync(
        self, base: str, partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> str:
        """`create` for synchronous code; runs on its own loop in a helper thread."""
        return run_in_thread(self.create(base, partitions, config))


def run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop, never touching the caller's loop."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-admin") as pool:
        return pool.submit(asyncio.run, coro).result()
