"""Static group membership (RATER_INSTANCE_ID) on the real broker.

A worker with an instance id killed with SIGKILL and started again at once
gets its partitions back from the broker without a rebalance (its log joins
the same generation every time), and the outputs still equal the pure
core's, no id twice. Two processes started with one instance id: the older
is fenced, says so, and exits; the newer finishes the scenario, and nothing
is applied twice (decisions.md D46 ("Static group membership")).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rater.config import Settings
from rater.devkit.scenario import TARIFFS, build
from rater.stream.membership import FENCED_EXIT_CODE
from tests.support.group import inputs, until
from tests.support.membership import (
    complete_and_equal,
    generations,
    holders,
    more_rated_than,
    parts,
    rated_count,
    static_worker,
)


@pytest.fixture(autouse=True)
def _info_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests read the workers' group generations and fencing line from their logs."""
    monkeypatch.setenv("RATER_WORKER_LOGLEVEL", "info")


async def test_killed_and_restarted_five_times_without_a_rebalance(
    settings: Settings, tmp_path: Path
) -> None:
    # A static member keeps its partitions only while its session lasts; on a loaded
    # machine a restart took longer than the default 10 s (the group then rebalanced,
    # as it should). 45 s, as deploy/k8s sets it.
    settings = dataclasses.replace(settings, session_timeout_s=45.0)
    scenario = build(cdrs_per_tenant=60, seed=31)
    pieces = parts(scenario, 6)
    worker = static_worker(settings, tmp_path, "a", "worker-a")
    try:
        worker.start()
        await holders(settings, [worker])
        rated = 0
        async with inputs(settings) as feed:
            for kill, piece in enumerate(pieces[:5], start=1):

                async def joined(count: int = kill) -> bool:
                    return len(generations(worker)) >= count

                await until(f"start {kill} to join the group", joined, 120, [worker])
                await feed.send(piece, TARIFFS if kill == 1 else None)
                rated = await more_rated_than(settings, rated, [worker])
                worker.kill()  # while it rates: the next part is sent during the restart
                worker.start()
            await feed.send(pieces[5])
        await complete_and_equal(settings, scenario, [worker], [])
        joined = generations(worker)
        # Six processes, one generation: each restart took the old member's place.
        assert len(joined) == 6 and set(joined) == {joined[0]}, (joined, worker.tail())
    finally:
        worker.stop()


async def test_the_older_of_two_processes_with_one_instance_id_is_fenced(
    settings: Settings, tmp_path: Path
) -> None:
    scenario = build(cdrs_per_tenant=60, seed=37)
    first, second, third = parts(scenario, 3)
    older = static_worker(settings, tmp_path, "old", "worker-x")
    newer = static_worker(settings, tmp_path, "new", "worker-x")
    # The broker keeps the replaced member's client id for the static member, so
    # both carry the same one (the group's members are told apart by it).
    newer.client_id = older.client_id
    newer.env["BROKER_CLIENT_ID"] = older.client_id
    try:
        older.start()
        await holders(settings, [older])
        async with inputs(settings) as feed:
            await feed.send(first, TARIFFS)
            await more_rated_than(settings, 0, [older])
            await feed.send(second)  # on its way while the second process starts
            newer.start()

            async def older_exited() -> bool:
                return not older.alive()

            await until("the older process to stop", older_exited, 120, [newer], [older])
            assert older.proc is not None and older.proc.returncode == FENCED_EXIT_CODE, (
                older.tail()
            )
            log = older.log_path.read_text(errors="replace")
            assert "FENCED: another process joined group" in log, older.tail()
            assert "RATER_INSTANCE_ID=worker-x" in log
            await feed.send(third)
        await holders(settings, [newer])
        await complete_and_equal(settings, scenario, [newer], [older])
        assert newer.alive() and await rated_count(settings) > 0
    finally:
        older.stop()
        newer.stop()
