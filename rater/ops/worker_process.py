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

from rater.stream.settings import Settings


def free_port() -> int:
    """A TCP port nothing listens on now, for a worker's web server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "RATER_APP_ID": settings.app_id,
        "RATER_TOPIC_PREFIX": settings.topic_prefix,
        "RATER_PARTITIONS": str(settings.partitions),
        "RATER_DATA_DIR": str(settings.data_dir),
        "RATER_EXPIRY_SWEEP": "on" if settings.expiry_sweep else "off",
        "RATER_SWEEP_INTERVAL_S": str(int(settings.sweep_interval_s)),
        "RATER_MAX_POLL_RECORDS": str(settings.max_poll_records),
        "RATER_ROCKSDB_MEMORY_MB": str(settings.rocksdb_memory_mb),
        "RATER_WEB_PORT": str(settings.web_port),
        "RATER_WEB_HOST": settings.web_host or "",
        "RATER_API_TOKEN": settings.api_token or "",
        "RATER_SESSION_TIMEOUT_S": str(int(settings.session_timeout_s)),
    }
    if settings.instance_id is not None:
        env["RATER_INSTANCE_ID"] = settings.instance_id
    return env


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
        env = os.environ | settings_env(self.settings) | self.env
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
