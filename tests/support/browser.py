"""Debian's Chromium, driven by Playwright, for the page tests: never a downloaded browser.

A missing browser fails the test loudly with the command that installs it;
it is never skipped (`.ci/run` installs it).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright's Browser)."""
    if not CHROMIUM.exists():
        found = shutil.which("chromium")
        pytest.fail(
            f"no browser at {CHROMIUM} (which chromium: {found}): "
            "run `apt-get update && apt-get install -y chromium` (.ci/run does)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
