"""Start, stop and inspect one local single-node Kafka broker (KRaft, 127.0.0.1)."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from rater.devkit.localkafka import config, probe, process
from rater.devkit.localkafka.jars import ensure_jars
from rater.devkit.localkafka.settings import BrokerSettings
from rater.devkit.localkafka.tools import LocalKafkaError, require_java


@dataclass
class StartResult:
    """What `start` did, with phase timings (seconds) for the start-time measurements."""

    bootstrap: str
    pid: int | None
    started: bool
    timings: dict[str, float] = field(default_factory=dict)


class Broker:
    """A broker whose config, data, logs and pid file all live in one data dir."""

    def __init__(self, settings: BrokerSettings | None = None) -> None:
        self.settings = settings or BrokerSettings()

    @property
    def bootstrap(self) -> str:
        return self.settings.bootstrap

    def pid(self) -> int | None:
        """Pid of the broker started from this data dir, if it still runs."""
        pid = process.read_pid(self.settings.pid_file)
        if pid is not None and process.runs_broker(pid, self.settings.properties_file):
            return pid
        return None

    def answers(self, timeout: float = 5.0) -> bool:
        return probe.answers(self.bootstrap, timeout=timeout)

    def start(self, timeout: float = 120.0) -> StartResult:
        """Start the broker unless one already answers; return once it serves metadata."""
        if self.answers():
            return StartResult(self.bootstrap, self.pid(), started=False)
        pid = self.pid()
        if pid is not None:  # started earlier and still coming up
            if probe.wait_until_answers(self.bootstrap, timeout, lambda: process.alive(pid)):
                return StartResult(self.bootstrap, pid, started=False)
            raise LocalKafkaError(self._failure(f"broker pid {pid} does not answer"))
        if probe.port_open(self.bootstrap):
            raise LocalKafkaError(
                f"port {self.settings.port} is taken by something that is not a Kafka broker"
            )
        timings: dict[str, float] = {}
        t0 = time.monotonic()
        java = require_java()
        ensure_jars(self.settings)
        timings["jars"] = time.monotonic() - t0
        t1 = time.monotonic()
        self._write_config()
        self._format(java)
        timings["format"] = time.monotonic() - t1
        t2 = time.monotonic()
        proc = self._launch(java)
        ok = probe.wait_until_answers(self.bootstrap, timeout, lambda: proc.poll() is None)
        timings["answer"] = time.monotonic() - t2
        timings["total"] = time.monotonic() - t0
        if not ok:
            reason = (
                f"broker exited with status {proc.returncode}"
                if proc.poll() is not None
                else f"broker did not answer within {timeout:.0f}s"
            )
            process.terminate(proc.pid, 10.0)
            self.settings.pid_file.unlink(missing_ok=True)
            raise LocalKafkaError(self._failure(reason))
        return StartResult(self.bootstrap, proc.pid, started=True, timings=timings)

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop our broker (clean shutdown, then kill); return its pid, or None if none ran."""
        pid = self.pid()
        if pid is not None:
            process.terminate(pid, timeout)
        self.settings.pid_file.unlink(missing_ok=True)
        return pid

    def wipe(self) -> None:
        """Delete all broker state (not the jar cache); refuses while the broker runs.

        Also refuses a non-empty folder that does not look like a broker data dir, so a
        mistyped --data-dir or $RATER_TEST_KAFKA_DIR cannot delete someone's files.
        """
        data = self.settings.data
        if self.pid() is not None:
            raise LocalKafkaError(f"broker from {data} is running; stop it first")
        if not data.exists():
            return
        ours = {".gitignore", "server.properties", "kraft", "logs"}
        if any(data.iterdir()) and not (ours & {p.name for p in data.iterdir()}):
            raise LocalKafkaError(f"{data} does not look like a Kafka data dir; not deleting it")
        shutil.rmtree(data)

    def _write_config(self) -> None:
        s = self.settings
        s.logs_dir.mkdir(parents=True, exist_ok=True)
        ignore = s.data / ".gitignore"  # broker state must never be committed
        if not ignore.exists():
            ignore.write_text("*\n")
        s.properties_file.write_text(config.server_properties(s))
        name, text, _ = config.logging_config(s)
        (s.data / name).write_text(text)

    def _format(self, java: str) -> None:
        if config.is_formatted(self.settings.kraft_dir):
            return
        cmd = config.format_command(java, self.settings, config.new_cluster_id())
        proc = subprocess.run(
            cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
        )
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise LocalKafkaError(f"formatting {self.settings.kraft_dir} failed: {tail}")

    def _launch(self, java: str) -> subprocess.Popen[bytes]:
        s = self.settings
        with s.console_log.open("wb") as out:
            proc = subprocess.Popen(
                config.broker_command(java, s),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=s.data,
                start_new_session=True,  # survives the CLI and Ctrl-C in the shell
            )
        process.remember(proc)
        process.write_pid(s.pid_file, proc.pid)
        return proc

    def _failure(self, reason: str) -> str:
        log = self.settings.logs_dir / "server.log"
        detail = _last_error(log) or _last_error(self.settings.console_log)
        detail = f" ({detail})" if detail else ""
        return f"{reason}{detail}; see {log} and {self.settings.console_log}"


def _last_error(path: Path) -> str:
    """The last ERROR/FATAL line of a log, so the one-line message says what went wrong."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [ln for ln in lines if " ERROR " in ln or " FATAL " in ln or "Exception" in ln]
    return errors[-1].strip()[:300] if errors else ""
