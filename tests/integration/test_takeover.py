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
import signal
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from rater.config import Settings
from rater.core.topics import OUTPUT_TOPICS as OUTPUTS
from rater.devkit.localkafka.readback import read_all
from rater.devkit.scenario import TARIFFS, build
from tests.support.group import (
    TENANTS,
    Worker,
    assignment,
    check_order_per_tenant,
    committed_and_end,
    inputs,
    until,
)
from tests.support.outputs_check import check, outputs


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
