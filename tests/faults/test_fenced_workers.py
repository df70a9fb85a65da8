"""A worker whose producers were fenced gets new ones and goes on rating by itself.

A worker frozen past its session (SIGSTOP here; a long GC pause or a stalled
VM in production) loses its partitions to the other worker, whose new
producers fence its own. When it is resumed and given partitions back, it
must rate them again within seconds, not fail every batch with
ProducerFenced (docs/decisions.md D31 ("Fenced producers")). The same holds for a
producer fenced by hand while nothing else happens.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from rater.config import Settings
from rater.devkit.inputs import produce_inputs
from rater.devkit.localkafka.readback import read_all
from rater.devkit.scenario import TARIFFS, build
from rater.devkit.worker_process import WorkerProcess, free_port
from tests.support.group import (
    TENANTS,
    Worker,
    assignment,
    check_order_per_tenant,
    inputs,
    until,
)
from tests.support.outputs_check import check, wait_for
from tests.support.stable import open_partitions

FROZEN_S = 20.0  # past the 10 s session: the fault itself, not a wait for anything
FREEZES = 2


def stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/rater/stats/", timeout=5) as response:
        return json.loads(response.read())


def freeze(worker: WorkerProcess) -> None:
    assert worker.proc is not None
    os.killpg(worker.proc.pid, signal.SIGSTOP)


def resume(worker: WorkerProcess) -> None:
    assert worker.proc is not None
    os.killpg(worker.proc.pid, signal.SIGCONT)


async def test_a_worker_frozen_past_its_session_rates_again_after_it_resumes(
    settings: Settings, tmp_path: Path
) -> None:
    scenario = build(cdrs_per_tenant=90, seed=31)
    size = -(-len(scenario.messages) // (2 * FREEZES + 1))
    parts = [scenario.messages[i : i + size] for i in range(0, len(scenario.messages), size)]
    a = Worker(replace(settings, web_port=free_port()), tmp_path, "a")
    b = Worker(replace(settings, web_port=free_port()), tmp_path, "b")
    both = [a, b]
    back_after: list[float] = []
    try:
        for worker in both:
            worker.start()

        async def both_hold_partitions() -> bool:
            state, held = await assignment(settings)
            return state == "Stable" and len(held) == 2 and all(held.values())

        async with inputs(settings) as feed:
            await until("two members sharing the partitions", both_hold_partitions, 90, both)
            await feed.send(parts[0], TARIFFS)
            for round_ in range(FREEZES):
                freeze(b)
                frozen_at = time.monotonic()

                async def a_holds_all() -> bool:
                    state, held = await assignment(settings)
                    return state == "Stable" and held.get(a.client_id) == set(range(4))

                await until("the other worker taking over", a_holds_all, 60, [a])
                await feed.send(parts[1 + 2 * round_])  # rated by a alone
                await _wait_out(frozen_at, FROZEN_S)
                resume(b)
                resumed = time.monotonic()

                async def b_holds_partitions() -> bool:
                    state, held = await assignment(settings)
                    return state == "Stable" and bool(held.get(b.client_id))

                # The next part is sent once b holds partitions again: sent earlier, all of
                # it can be rated by a before the rebalance ends, and b has nothing to commit
                # (docs/decisions.md D47).
                await until("the resumed worker holding partitions", b_holds_partitions, 90, both)
                before = stats(b.settings.web_port)["batches_committed"]
                await feed.send(parts[2 + 2 * round_])  # b's share can only be rated by b

                async def b_commits_again(before: int = before) -> bool:
                    return stats(b.settings.web_port)["batches_committed"] > before

                await until("a committed batch from the resumed worker", b_commits_again, 90, both)
                back_after.append(time.monotonic() - resumed)
            for part in parts[1 + 2 * FREEZES :]:
                await feed.send(part)
        got = await wait_for(settings, scenario, a, timeout=180.0)
        check_order_per_tenant(scenario, got)
        check(scenario, got)
        assert await open_partitions(settings) == {}
        renewed = stats(b.settings.web_port)["producers_renewed"]
    finally:
        for worker in both:
            if worker.alive():
                resume(worker)  # a stopped process does not act on SIGTERM
            worker.stop()
    print(f"resumed worker committed again after {[round(s, 1) for s in back_after]} s;"
          f" producers renewed after failed batches: {renewed}")
    assert max(back_after) < 60.0


async def _wait_out(since: float, seconds: float) -> None:
    """Keep the worker frozen until ``seconds`` have passed since ``since``."""
    left = seconds - (time.monotonic() - since)
    if left > 0:
        time.sleep(left)  # the length of the fault, not synchronisation


async def test_a_producer_fenced_by_hand_is_replaced_and_nothing_is_lost(
    settings: Settings, tmp_path: Path
) -> None:
    settings = replace(settings, web_port=free_port(), max_poll_records=20)
    scenario = build(cdrs_per_tenant=60, seed=33)
    half = len(scenario.messages) // 2
    await produce_inputs(settings, scenario.messages[:half], TARIFFS)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        async def every_tenant_rated() -> bool:
            seen = await read_all(settings.bootstrap_servers, settings.topic("rated-cdrs"))
            return {orjson.loads(r.value)["tenant_id"] for r in seen} >= set(TENANTS)

        await until("output on every partition", every_tenant_rated, 90, [])
        for partition in range(settings.partitions):  # each fences the worker's producer
            usurper = AIOKafkaProducer(
                bootstrap_servers=settings.bootstrap_servers,
                transactional_id=f"{settings.app_id}-rater-{partition}",
            )
            await usurper.start()
            await usurper.stop()
        await produce_inputs(settings, scenario.messages[half:])
        got = await wait_for(settings, scenario, worker)
        check_order_per_tenant(scenario, got)
        check(scenario, got)
        assert await open_partitions(settings) == {}
        figures = stats(settings.web_port)
        assert figures["producers_renewed"] >= settings.partitions, figures
        assert figures["batches_failed"] >= settings.partitions, figures
        url = f"http://127.0.0.1:{settings.web_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            metrics = response.read().decode()
        failed = [line for line in metrics.splitlines() if line.startswith("rater_failed_batches")]
        assert failed and float(failed[0].split()[-1]) >= settings.partitions, failed
    finally:
        worker.stop()
