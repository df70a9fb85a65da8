"""A rater worker in a child process: for the demo, tests and benchmarks.

Running the real `rater worker` command (not an in-process app) is what lets
tests kill it with SIGKILL at any moment, as a crash would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from rater.config import Settings


def free_port() -> int:
    """A TCP port nothing listens on now, for a worker's web server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_pair() -> int:
    """A port whose successor is free too (the broker's controller takes port + 1)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two adjacent free ports")


class WorkerProcess:
    """``module`` lets a test run a worker with faults injected (same command line).

    ``command`` is the `rater` subcommand: ``notify`` runs the notifier the
    same way (its SMTP settings in ``env``), so tests can kill it as a crash would.
    """

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        module: str = "rater",
        env: dict[str, str] | None = None,
        command: str = "worker",
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.module = module
        self.env = env or {}
        self.command = command
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = os.environ | self.settings.to_env() | self.env
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        loglevel = env.get("RATER_WORKER_LOGLEVEL", "warning")  # "info" to debug a test
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, self.command, "--loglevel", loglevel],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM and wait: a graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait(self, timeout: float) -> int:
        """Wait for the process to end by itself; its return code (-9 for SIGKILL)."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
