"""The worker's web views on the real broker: health for probes, counters for ops."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from rater.config import Settings
from rater.devkit.inputs import produce_inputs
from rater.devkit.localkafka.readback import read_all
from rater.devkit.scenario import TARIFFS, build
from rater.devkit.worker_process import WorkerProcess, free_port


async def get(port: int, path: str) -> tuple[int, Any]:
    """Status and JSON body of one request; (0, None) while nothing listens yet."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}{path}") as response,
        ):
            return response.status, await response.json()
    except aiohttp.ClientConnectionError:
        return 0, None


async def poll(port: int, path: str, done: Any, worker: WorkerProcess, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status, body = await get(port, path)
        if done(status, body):
            return body
        assert worker.alive(), worker.log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{path}: last answer {status} {body}"
        await asyncio.sleep(0.3)  # poll interval; the loop exits on the condition above


async def test_health_and_stats_views(settings: Settings, tmp_path: Path) -> None:
    settings = replace(settings, web_port=free_port())
    scenario = build(cdrs_per_tenant=10, seed=3)
    await produce_inputs(settings, scenario.messages, TARIFFS)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        port = settings.web_port
        health = await poll(port, "/rater/health/", lambda s, b: s == 200, worker, 120)
        assert health == {"status": "ok", "app_id": settings.app_id, "partitions": [0, 1, 2, 3]}

        want = len(scenario.messages)
        stats = await poll(
            port, "/rater/stats/", lambda s, b: s == 200 and b["inputs_committed"] >= want,
            worker, 120,
        )
        assert stats["inputs_committed"] == want
        rated = await read_all(settings.bootstrap_servers, settings.topic("rated-cdrs"))
        assert stats["outputs_committed"]["rated-cdrs"] == len(rated)
        assert stats["outputs_committed"]["rated-cdrs"] == len(scenario.expected["rated-cdrs"])
        assert stats["tariff_rows"] == len(TARIFFS)
        assert stats["last_commit_at"].endswith("Z")
    finally:
        worker.stop()
    assert (await get(settings.web_port, "/rater/health/"))[0] == 0  # gone with the worker
