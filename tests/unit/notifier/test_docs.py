"""docs/notifications.md shows what the templates really render."""

from __future__ import annotations

from tests.support.notification_docs import DOC, generate


def test_the_rendered_examples_in_the_docs_are_current() -> None:
    assert DOC.read_text() == generate(), (
        "docs/notifications.md is stale: .venv/bin/python -m tests.support.notification_docs"
    )
