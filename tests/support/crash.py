"""Running the crashing worker (tests/faults/crashing_worker.py) until it kills itself."""

from __future__ import annotations

import signal
from pathlib import Path

from rater.config import Settings
from rater.devkit.worker_process import WorkerProcess


def crash_at(
    settings: Settings, log_path: Path, point: str, after: int, timeout: float
) -> WorkerProcess:
    """Start the crashing worker and wait until it SIGKILLs itself at the ``after``-th
    ``point`` of a batch; fail (and kill it) if it ends any other way or not in time."""
    crashing = WorkerProcess(
        settings,
        log_path,
        module="tests.faults.crashing_worker",
        env={"RATER_CRASH_AT": point, "RATER_CRASH_AFTER": str(after)},
    )
    crashing.start()
    try:
        assert crashing.wait(timeout=timeout) == -signal.SIGKILL, crashing.log_path.read_text()
    finally:
        crashing.kill()
    return crashing
