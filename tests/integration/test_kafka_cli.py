"""`rater kafka start|status|stop` as an operator runs them: separate processes, own broker.

Runs on free ports with its own data dir, so the session's shared test broker is untouched.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from rater.devkit.localkafka.admin import TopicSpec, create_topics
from rater.devkit.localkafka.broker import Broker
from rater.devkit.localkafka.readback import read_all
from rater.devkit.localkafka.settings import BrokerSettings

pytestmark = pytest.mark.integration


def _free_ports(count: int) -> list[int]:
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


@pytest.fixture
def cli_options(tmp_path: Path) -> Iterator[list[str]]:
    """Options for a throwaway broker; whatever the test leaves running is stopped."""
    port, controller = _free_ports(2)
    data = tmp_path / "kafka"
    yield ["--port", str(port), "--controller-port", str(controller), "--data-dir", str(data)]
    Broker(BrokerSettings(port=port, controller_port=controller, data_dir=data)).stop()


def rater_kafka(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from rater.cli import main; main()", "kafka", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def test_start_twice_status_stop_status(cli_options: list[str]) -> None:
    port = cli_options[1]

    first = rater_kafka("start", *cli_options)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"127.0.0.1:{port}\n"  # only the address: usable in $(...)
    assert "started (pid" in first.stderr

    second = rater_kafka("start", *cli_options)
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"127.0.0.1:{port}\n"
    assert "already running" in second.stderr

    running = rater_kafka("status", *cli_options)
    assert running.returncode == 0, running.stdout + running.stderr
    assert f"running at 127.0.0.1:{port}" in running.stdout

    stopped = rater_kafka("stop", *cli_options)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped Kafka broker" in stopped.stdout

    after = rater_kafka("status", *cli_options)
    assert after.returncode == 1
    assert "not running" in after.stdout

    again = rater_kafka("stop", *cli_options)
    assert again.returncode == 0
    assert "no Kafka broker running" in again.stdout


async def test_data_survives_a_restart(cli_options: list[str], unique_prefix: str) -> None:
    port, data = cli_options[1], Path(cli_options[-1])
    bootstrap = f"127.0.0.1:{port}"
    assert rater_kafka("start", *cli_options).returncode == 0
    meta = (data / "kraft" / "meta.properties").read_text()
    topic = unique_prefix + "durable"
    await create_topics(bootstrap, [TopicSpec(topic)])
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all") as producer:
        await producer.send_and_wait(topic, b"kept")
    assert rater_kafka("stop", *cli_options).returncode == 0

    restarted = rater_kafka("start", *cli_options)

    assert restarted.returncode == 0, restarted.stderr
    assert (data / "kraft" / "meta.properties").read_text() == meta  # not formatted again
    assert [r.value for r in await read_all(bootstrap, topic)] == [b"kept"]
