"""Helpers of the membership fault tests: workers with instance ids, scenario in parts."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from pathlib import Path

from rater.config import Settings
from rater.core.topics import OUTPUT_TOPICS as OUTPUTS
from rater.devkit.localkafka.readback import read_all
from rater.devkit.scenario import Scenario
from tests.support.group import Worker, assignment, check_order_per_tenant, until
from tests.support.outputs_check import check, outputs

JOINED = re.compile(r"Joined group '[^']+' \(generation (\d+)\)")


def static_worker(settings: Settings, tmp_path: Path, name: str, instance_id: str) -> Worker:
    """A worker process with its own data directory and ``RATER_INSTANCE_ID``."""
    return Worker(dataclasses.replace(settings, instance_id=instance_id), tmp_path, name)


def parts(scenario: Scenario, count: int) -> list[list[tuple[str, bytes, bytes]]]:
    """The scenario's messages in ``count`` consecutive parts."""
    size = -(-len(scenario.messages) // count)
    return [scenario.messages[i : i + size] for i in range(0, len(scenario.messages), size)]


def generations(worker: Worker) -> list[int]:
    """The group generations the worker's log says it joined, in order (needs loglevel info)."""
    text = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
    return [int(found) for found in JOINED.findall(text)]


async def rated_count(settings: Settings) -> int:
    return len(await read_all(settings.bootstrap_servers, settings.topic("rated-cdrs")))


async def more_rated_than(
    settings: Settings, count: int, alive: list[Worker], timeout: float = 120.0
) -> int:
    """Wait until more than ``count`` rated CDRs are committed; the new count."""

    async def grown() -> int | None:
        now = await rated_count(settings)
        return now if now > count else None

    return await until(f"more than {count} rated CDRs", grown, timeout, alive)


async def holders(
    settings: Settings, members: list[Worker], timeout: float = 120.0
) -> dict[str, set[int]]:
    """Wait until exactly ``members`` share every partition, each holding some."""

    async def shared() -> dict[str, set[int]] | None:
        state, held = await assignment(settings)
        ok = (
            state == "Stable"
            and held.keys() == {w.client_id for w in members}
            and all(held.values())
            and set().union(*held.values()) == set(range(settings.partitions))
        )
        return held if ok else None

    names = ", ".join(w.client_id for w in members)
    return await until(f"partitions shared by {names}", shared, timeout, members)


async def complete_and_equal(
    settings: Settings, scenario: Scenario, alive: list[Worker], others: list[Worker]
) -> None:
    """Wait for every expected output, then compare them with the pure core's."""
    want = {name: len(scenario.expected.get(name, [])) for name in OUTPUTS}
    want["rater-dlq"] = len(scenario.rejected)

    async def complete() -> dict[str, list] | None:
        got = await outputs(settings)
        return got if all(len(got[name]) >= n for name, n in want.items()) else None

    deadline = time.monotonic() + 180
    got = None
    while got is None and time.monotonic() < deadline:
        got = await complete()
        for worker in alive:
            assert worker.alive(), f"{worker.client_id} died\n{worker.tail()}"
        if got is None:
            await asyncio.sleep(0.5)  # poll interval; the loop ends on the condition
    final = got or await outputs(settings)
    try:
        check_order_per_tenant(scenario, final)
        check(scenario, final)
    except AssertionError as err:
        counts = {name: (len(final[name]), n) for name, n in want.items()}
        logs = "\n".join(w.tail() for w in [*alive, *others])
        raise AssertionError(f"{err}\n(got, expected): {counts}\n{logs}") from err
