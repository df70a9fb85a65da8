"""Fault-injection tests run real worker processes against the real broker.

They share the integration suite's ``settings`` fixture (fresh topics, 4
partitions) and get its ``integration`` marker, so ``pytest -m "not
integration"`` leaves them out too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import settings  # noqa: F401 - a fixture, used by name

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
