"""The worker's command line does not load the tooling it never runs."""

from __future__ import annotations

import subprocess
import sys


def test_rater_cli_imports_no_demo_load_or_bench_code() -> None:
    probe = (
        "import sys, rater.cli; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('rater.devkit.demo', 'load.produce', 'load.bench.run', 'aiosmtpd'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_lazy_commands_are_listed_and_load() -> None:
    from click.testing import CliRunner

    from rater.cli import main

    result = CliRunner().invoke(main, ["--help"])
    assert all(name in result.output for name in ("demo", "load", "bench", "worker", "notify"))
    assert CliRunner().invoke(main, ["demo", "--help"]).exit_code == 0
