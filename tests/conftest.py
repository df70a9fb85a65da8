"""Fixtures shared by all test suites: one Kafka broker per session, unique topics per test.

The broker is chosen in tests/support/broker.py (environment, Docker, or the
project's own); a test that cannot get one errors at setup, never skipped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from rater.config import Settings
from rater.devkit.localkafka.admin import TopicFactory
from rater.stream.topics import ensure_topics
from tests.support.broker import session_broker

# Shared, noisy 2-core machines (the broker starts beside the unit tests): time is
# not a property under test, so hypothesis neither times examples nor their generation.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address ("host:port") of a broker that supports transactions."""
    yield from session_broker()


@pytest.fixture
def unique_prefix() -> str:
    """A per-test topic/group/transactional-id prefix such as 't-1a2b3c4d-'."""
    return f"t-{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def topic_factory(kafka_bootstrap: str, unique_prefix: str) -> TopicFactory:
    """Creates topics named `<unique_prefix><base>` on the session broker."""
    return TopicFactory(kafka_bootstrap, unique_prefix)


@pytest.fixture
def settings(kafka_bootstrap: str, unique_prefix: str, tmp_path: Path) -> Settings:
    """A worker's settings on fresh topics (4 partitions, no sweep, no web), topics created."""
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        app_id=unique_prefix + "rater",
        topic_prefix=unique_prefix,
        partitions=4,
        data_dir=tmp_path / "data",
        expiry_sweep=False,
        web_port=0,
    )
    asyncio.run(ensure_topics(settings))
    return settings
