"""Pid files and signals for a broker that outlives the command that started it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

# Brokers started by this Python process: kept so they can be reaped (no zombies, no
# "subprocess still running" warnings) when the same process stops them, as tests do.
_children: dict[int, subprocess.Popen[bytes]] = {}


def remember(proc: subprocess.Popen[bytes]) -> None:
    _children[proc.pid] = proc


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def write_pid(pid_file: Path, pid: int) -> None:
    pid_file.write_text(f"{pid}\n")


def alive(pid: int) -> bool:
    """True while the process runs; a zombie child is reaped and counts as dead."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def runs_broker(pid: int, properties_file: Path) -> bool:
    """Guard against pid reuse: the process must be a Kafka broker using our config file."""
    if not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (not Linux): trust the pid file
    args = [a.decode(errors="replace") for a in cmdline]
    return "kafka.Kafka" in args and str(properties_file) in args


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM (Kafka shuts down cleanly), then SIGKILL if it is still up at the deadline."""
    _signal(pid, signal.SIGTERM)
    if not wait_dead(pid, timeout):
        _signal(pid, signal.SIGKILL)
        wait_dead(pid, 10.0)
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1.0)


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)  # poll interval for the exit condition above
    return True


def _signal(pid: int, sig: signal.Signals) -> None:
    """Signal the broker's own session (it was started as a session leader)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
