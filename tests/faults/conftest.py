"""Fault tests run real processes against the real broker, like the integration suite.

They get the integration suite's ``settings`` fixture (fresh topics per test)
and its ``integration`` marker, so `-m "not integration"` leaves them out too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import settings  # noqa: F401 - the shared fixture

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
