"""Fault-injection tests run real worker processes against the real broker.

They use the session's ``settings`` fixture (tests/conftest.py: fresh topics,
4 partitions) and get the ``integration`` and ``faults`` markers, so
``pytest -m "not integration"`` leaves them out too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.faults)
