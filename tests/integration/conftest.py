"""Integration tests talk to a real broker (fixtures in tests/conftest.py).

Every test collected here gets the `integration` marker even if its module forgot it, so
`pytest -m "not integration"` reliably leaves out everything that needs Kafka.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rater.stream.settings import Settings
from rater.stream.topics import ensure_topics

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def settings(kafka_bootstrap: str, unique_prefix: str, tmp_path: Path) -> Settings:
    """A worker's settings on fresh topics (4 partitions, no sweep, no web), topics created."""
    settings = Settings(
        bootstrap_servers=kafka_bootstrap, app_id=unique_prefix + "rater",
        topic_prefix=unique_prefix, partitions=4, data_dir=tmp_path / "data",
        expiry_sweep=False, web_port=0,
    )
    asyncio.run(ensure_topics(settings))
    return settings
