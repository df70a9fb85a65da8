"""The package layout's rules (docs/architecture.md): who may import whom, and module size.

Checked on the source, so a new import that breaks a rule fails here rather
than in review: the runtime never loads the development kit or the load
tooling, the billing core loads nothing of the shell, the web views reach
the worker only through the status protocol.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RATER = Path(__file__).resolve().parents[2] / "rater"
MAX_LINES = 500

# package (or top-level module) -> the rater packages it may import
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "compat": set(),
    "config": {"core"},
    "observability": {"core", "config"},
    "web": {"core", "config", "observability"},
    "stream": {"core", "config", "compat", "observability", "web"},
    "notifier": {"core", "config", "compat", "stream"},
    "dlq": {"core", "config", "stream"},
}


def modules() -> list[Path]:
    return sorted(RATER.rglob("*.py"))


def area_of(path: Path) -> str:
    relative = path.relative_to(RATER)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def rater_imports(path: Path) -> set[str]:
    """The rater packages a module imports (top level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "rater" and len(parts) > 1:
                found.add(parts[1])
            if parts[0] == "load":
                found.add("load")
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(RATER)))
def test_a_module_imports_only_what_its_package_may(path: Path) -> None:
    area = area_of(path)
    if area not in ALLOWED:
        return  # cli, __main__, devkit: entry points and the kit may use anything
    imported = rater_imports(path) - {area}
    assert imported <= ALLOWED[area], f"{area} may not import {sorted(imported - ALLOWED[area])}"


def test_the_runtime_never_imports_the_kit_or_the_load_tooling() -> None:
    offenders = [
        str(path.relative_to(RATER))
        for path in modules()
        if area_of(path) in ALLOWED and rater_imports(path) & {"devkit", "load"}
    ]
    assert offenders == []


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(RATER)))
def test_no_module_is_over_the_size_limit(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{lines} lines: split it by concern"


def test_every_package_says_what_it_owns() -> None:
    missing = [
        str(init.relative_to(RATER))
        for init in RATER.rglob("__init__.py")
        if ast.get_docstring(ast.parse(init.read_text())) is None
    ]
    assert missing == []
