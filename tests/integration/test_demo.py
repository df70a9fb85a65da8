"""`rater demo` run briefly, as CI would (no terminal): its summary equals what the topics hold."""

from __future__ import annotations

import asyncio
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import orjson

from rater.devkit.localkafka.readback import read_all

DEMO_TIMEOUT_S = 300  # the demo itself stays under 2 minutes; a loaded CI machine gets slack


def _values(bootstrap: str, topic: str) -> list[dict]:
    return [orjson.loads(r.value) for r in asyncio.run(read_all(bootstrap, topic))]


def _processes_in(cwd: Path) -> str:
    """The command lines of the processes whose working directory is ``cwd`` (Linux)."""
    lines = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cwd").resolve() == cwd.resolve():
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # gone, or not ours
    return "\n".join(lines)


def test_demo_summary_is_what_the_topics_hold(kafka_bootstrap: str, tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rater",
            "demo",
            "--duration",
            "8",
            "--rate",
            "60",
            "--summary-json",
            str(summary_path),
        ],
        cwd=tmp_path,
        env=os.environ | {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "COLUMNS": "120"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
    )
    took = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # No client retry noise and no traceback reach the terminal (they go to the log file).
    for noise in ("Traceback", "retrying", "NotLeaderForPartition", "WARNING"):
        assert noise not in output, output
    progress = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert progress and "sent" in progress[-1], output  # a line every few seconds
    assert "What happened" in output and "A negative prepaid balance means" in output
    assert "rater kafka stop" not in output  # an external broker is not the demo's to stop
    print(f"demo took {took:.1f}s")

    figures = orjson.loads(summary_path.read_bytes())
    prefix = figures["topic_prefix"]

    def topic(name: str) -> list[dict]:
        return _values(kafka_bootstrap, prefix + name)

    cdrs = asyncio.run(read_all(kafka_bootstrap, prefix + "cdrs"))
    rated = topic("rated-cdrs")
    dlq = topic("rater-dlq")
    requests = topic("topup-requests")
    notifications = topic("notifications")
    ledger = topic("ledger")
    states = topic("service-state")
    overage = topic("overage")

    assert figures["cdrs_sent"] == len(cdrs) > 0
    assert figures["cdrs_rated"] == len(rated)
    assert figures["cdrs_rated_at_no_charge"] == sum(Decimal(r["amount"]) == 0 for r in rated)
    dlq_codes = Counter(r["error"]["code"] for r in dlq)
    assert figures["dlq"] == dict(dlq_codes)
    assert {"invalid_json", "no_tariff"} <= set(dlq_codes)  # sent on purpose, and explained
    for code in dlq_codes:
        assert code in output
    # Every CDR is rated or rejected: the demo waited for the worker to catch up.
    assert len(rated) + sum(r["source_topic"] == prefix + "cdrs" for r in dlq) == len(cdrs)
    kinds = Counter(n["type"] for n in notifications)
    assert figures["notifications"] == dict(kinds)
    assert figures["topups"] == {
        "requested": len(requests),
        "succeeded": kinds["auto_recharge_succeeded"],
        "failed": kinds["auto_recharge_failed"],
    }
    assert len(requests) == kinds["auto_recharge_succeeded"] + kinds["auto_recharge_failed"] > 0
    # `rater notify` mailed every notification with a contact: the demo's SMTP server got
    # exactly those (the demo waits for the notifier too), and counted the others.
    with_contact = [n for n in notifications if (n.get("details") or {}).get("contact_email")]
    mails = figures["mails"]
    assert mails["received"] == len(with_contact) > 0
    assert mails["sent"] == dict(Counter(n["type"] for n in with_contact))
    assert mails["without_contact"] == len(notifications) - len(with_contact)
    assert mails["failed"] == {}
    assert f"mailed {len(with_contact):,} notices" in output
    assert f"mails {len(with_contact):,}" in progress[-1]
    assert kinds["auto_recharge_failed"] >= 1  # card-fails' card is declined
    last_state: dict[str, bool] = {}
    for state in states:
        last_state[state["tenant_id"]] = state["blocked"]
    assert figures["blocked"] == sorted(t for t, blocked in last_state.items() if blocked)
    total_overage = sum((Decimal(o["amount"]) for o in overage), Decimal(0))
    assert Decimal(figures["overage"].get("EUR", "0")) == total_overage
    balances: dict[str, str] = {}
    for entry in ledger:
        balances[entry["tenant_id"]] = entry["balance_after"]
    lowest = sorted(balances.items(), key=lambda item: (Decimal(item[1]), item[0]))[:8]
    assert figures["lowest_balances"] == [[t, b] for t, b in lowest]
    for tenant, _ in lowest:
        assert tenant in output


def test_ctrl_c_stops_the_demo_cleanly(kafka_bootstrap: str, tmp_path: Path) -> None:
    """SIGINT while calls are sent: what was seen is summed up, exit 130, the worker, the
    notifier and the SMTP server are gone."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rater", "demo", "--duration", "120", "--rate", "30"],
        cwd=tmp_path,
        env=os.environ | {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + DEMO_TIMEOUT_S
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while not any("calling]" in line and "rated" in line for line in lines[-1:]):
                assert time.monotonic() < deadline, "".join(lines)
                if selector.select(timeout=5.0):  # waits for output, with the deadline above
                    line = proc.stdout.readline().decode()
                    assert line, "".join(lines)  # the demo ended before it sent calls
                    lines.append(line)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines) + rest.decode()
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "Stopped by Ctrl-C: what was seen so far" in output
    port = int(re.search(r"RATER_WEB_PORT=(\d+)", output).group(1))  # type: ignore[union-attr]
    with socket.socket() as sock:  # the worker was stopped with the demo
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    smtp = int(re.search(r"SMTP server on 127.0.0.1:(\d+)", output).group(1))  # type: ignore[union-attr]
    with socket.socket() as sock:  # so was the mail server
        assert sock.connect_ex(("127.0.0.1", smtp)) != 0
    assert not re.search(r"rater(\.__main__)? notify", _processes_in(tmp_path))
