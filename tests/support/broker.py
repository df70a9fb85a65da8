"""The Kafka broker a test session uses: from the environment, Docker, or the project's own.

Broker choice, first match wins:
1. `KAFKA_BOOTSTRAP_SERVERS` set: that broker (it must answer within 30 s).
2. `RATER_TEST_BROKER=docker` and a Docker engine answers: a testcontainers Kafka
   (`RATER_TEST_KAFKA_IMAGE`, default below) with the single-node transaction settings.
3. The project's own local broker on 127.0.0.1:`RATER_TEST_KAFKA_PORT` (default 29092,
   controller port + 1) with data in `RATER_TEST_KAFKA_DIR` (default `<project>/.kafka-test`),
   apart from the demo broker (9092, `.kafka`). A broker already answering there (for example
   `rater kafka start --port 29092 --data-dir .kafka-test`) is reused and left running;
   otherwise the data dir is wiped, a broker started, and stopped at session end unless
   `RATER_TEST_KEEP_BROKER=1`.
A session that cannot get a broker fails at setup; no test is ever skipped for it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from rater.devkit.localkafka.broker import Broker
from rater.devkit.localkafka.config import SINGLE_NODE
from rater.devkit.localkafka.probe import wait_until_answers
from rater.devkit.localkafka.settings import BrokerSettings, project_root
from rater.devkit.localkafka.tools import LocalKafkaError

TEST_PORT = 29092
DOCKER_IMAGE = "confluentinc/cp-kafka:7.9.0"


def session_broker_settings() -> BrokerSettings:
    """Where the session's local broker runs; also used by tools that want to reuse it."""
    port = int(os.environ.get("RATER_TEST_KAFKA_PORT", TEST_PORT))
    data = os.environ.get("RATER_TEST_KAFKA_DIR") or project_root() / ".kafka-test"
    return BrokerSettings(port=port, data_dir=Path(data))


def _from_env(bootstrap: str) -> str:
    if not wait_until_answers(bootstrap, timeout=30.0):
        pytest.fail(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap} does not answer", pytrace=False)
    return bootstrap


def _docker_kafka() -> object | None:
    """A configured (not yet started) KafkaContainer, or None when no Docker engine answers."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as err:  # any failure means "no engine": fall back to the local broker
        warnings.warn(f"RATER_TEST_BROKER=docker but no Docker engine: {err}", stacklevel=2)
        return None
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers < 4.10
        from testcontainers.kafka import KafkaContainer

    container = KafkaContainer(os.environ.get("RATER_TEST_KAFKA_IMAGE", DOCKER_IMAGE)).with_kraft()
    for key, value in SINGLE_NODE.items():
        container.with_env("KAFKA_" + key.upper().replace(".", "_"), value)
    return container


def session_broker() -> Iterator[str]:
    """Bootstrap address ("host:port") of a broker that supports transactions, for the session."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        yield _from_env(env)
        return
    if os.environ.get("RATER_TEST_BROKER") == "docker":
        container = _docker_kafka()
        if container is not None:
            with container as kafka:  # type: ignore[attr-defined]
                yield kafka.get_bootstrap_server()
            return
    broker = Broker(session_broker_settings())
    if broker.answers():
        yield broker.bootstrap  # reuse; whoever started it stops it
        return
    problem = None
    try:
        if broker.pid() is None:
            broker.wipe()  # fresh state per session; jars stay cached
        broker.start(timeout=180.0)
    except LocalKafkaError as err:
        problem = str(err)
    if problem is not None:  # outside the except block: one clean line, no chained traceback
        pytest.fail(f"no Kafka broker for the tests: {problem}", pytrace=False)
    try:
        yield broker.bootstrap
    finally:
        if os.environ.get("RATER_TEST_KEEP_BROKER") != "1":
            broker.stop()
