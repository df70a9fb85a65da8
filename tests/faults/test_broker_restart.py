"""The broker stopped and started while a worker rates: nothing left open, lost or doubled.

A rolling restart or a broker crash once left transactions open for good on
the partitions the worker writes (docs/decisions.md D29 ("Hanging transactions")).
These tests run a broker of their own (the session broker is shared), stop
and start it with the worker mid-scenario, sometimes `kill -9` the worker
too, and then require: every output and changelog partition stable at its
log end, the outputs equal to the pure core's record by record, no id twice,
and a worker that restarts cleanly on the same data directory.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rater.config import Settings
from rater.devkit.inputs import produce_inputs
from rater.devkit.localkafka.broker import Broker
from rater.devkit.localkafka.readback import read_all
from rater.devkit.localkafka.settings import BrokerSettings
from rater.devkit.scenario import TARIFFS, build
from rater.devkit.worker_process import WorkerProcess, free_port, free_port_pair
from rater.stream.topics import ensure_topics
from tests.support.outputs_check import check, wait_for
from tests.support.stable import open_partitions

DOWN_S = 3.0  # how long the broker stays down: the fault itself, not a wait for anything
RESTARTS_PER_RUN = 4
# (kill -9 the worker mid-run, seed): 3 runs of RESTARTS_PER_RUN + 1 restarts, 15 in all
RUNS = [(False, 11), (True, 12), (True, 13)]


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    data_dir = tmp_path_factory.mktemp("kafka")
    broker = Broker(BrokerSettings(port=free_port_pair(), data_dir=data_dir))
    broker.start(timeout=180.0)
    try:
        yield broker
    finally:
        broker.stop()


def restart(broker: Broker) -> None:
    broker.stop()
    time.sleep(DOWN_S)  # the outage; what follows waits on conditions
    broker.start(timeout=180.0)


async def first_output(settings: Settings, worker: WorkerProcess, count: int) -> None:
    deadline = time.monotonic() + 120
    while len(await read_all(settings.bootstrap_servers, settings.topic("rated-cdrs"))) < count:
        assert worker.alive(), worker.log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, "the worker rated nothing"
        await asyncio.sleep(0.05)  # poll interval


def ready(port: int, timeout: float = 120.0) -> dict:
    """The worker's health once it answers 200, or fail with its last answer."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/rater/health/", timeout=5) as r:
                return json.loads(r.read())
        except OSError as exc:  # 503 (HTTPError) or not listening yet
            last = exc
        time.sleep(0.2)  # poll interval
    raise AssertionError(f"worker not healthy after {timeout}s: {last}")


@pytest.mark.parametrize(("kill", "seed"), RUNS)
async def test_broker_restarts_leave_nothing_open(
    own_broker: Broker, tmp_path: Path, unique_prefix: str, kill: bool, seed: int
) -> None:
    settings = Settings(
        bootstrap_servers=own_broker.bootstrap, app_id=unique_prefix + "rater",
        topic_prefix=unique_prefix, partitions=4, data_dir=tmp_path / "data",
        expiry_sweep=False, web_port=free_port(), max_poll_records=10,
    )
    await ensure_topics(settings)
    scenario = build(cdrs_per_tenant=150, seed=seed)
    size = -(-len(scenario.messages) // RESTARTS_PER_RUN)
    waves = [scenario.messages[i : i + size] for i in range(0, len(scenario.messages), size)]
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    await produce_inputs(settings, waves[0], TARIFFS)
    worker.start()
    try:
        for number, wave in enumerate(waves[1:], start=1):
            await first_output(settings, worker, count=number)
            await produce_inputs(settings, wave)
            restart(own_broker)  # the worker is rating this wave when the broker goes
            if kill and number == 2:
                worker.kill()
                worker.start()
                # Up before the next outage: a worker whose own start meets an outage
                # exits for its supervisor to restart (docs/decisions.md D72).
                ready(settings.web_port)
        restart(own_broker)
        check(scenario, await wait_for(settings, scenario, worker, timeout=240.0))
        assert await open_partitions(settings) == {}
        worker.stop()
        worker = replace_worker(worker, settings)
        worker.start()
        assert ready(settings.web_port)["status"] == "ok"
        check(scenario, await wait_for(settings, scenario, worker))
        log = worker.log_path.read_text(errors="replace")
        assert "ConsistencyError" not in log and "refusing to rate" not in log, log[-3000:]
    finally:
        worker.stop()


def replace_worker(worker: WorkerProcess, settings: Settings) -> WorkerProcess:
    return WorkerProcess(settings, worker.log_path.with_name("restarted.log"))

