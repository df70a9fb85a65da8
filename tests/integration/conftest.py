"""Integration tests talk to a real broker (fixtures in tests/conftest.py).

Every test collected here gets the `integration` marker even if its module forgot it, so
`pytest -m "not integration"` reliably leaves out everything that needs Kafka.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
