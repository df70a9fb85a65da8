"""The notifier's throughput and delay against a loopback SMTP server (issue 21's figures).

Run from the project root::

    .venv/bin/python -m load notify [--backlog 3000] [--rate 50] [--seconds 20]

Uses KAFKA_BOOTSTRAP_SERVERS, else starts its own broker (as `rater bench`).
Two phases, one `rater notify` process (default settings: 16 sends in
flight), an aiosmtpd server on loopback that accepts everything at once:

1. throughput: ``--backlog`` notices are waiting in `notifications` before the
   notifier starts; mails/s from the first mail at the server to the last;
2. delay: notices produced at ``--rate`` per second for ``--seconds``; for each,
   the time from its record's timestamp to its arrival at the server: p50, p99, max.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from load.bench.run import bench_broker
from rater.config import Settings
from rater.devkit.mail_server import MailServer
from rater.stream.topics import ensure_topics
from tests.support.notices import batch, encoded
from tests.support.notifier_harness import Notifier, wait_until


async def produce_backlog(settings: Settings, values: list[dict]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        for value in values:
            key, raw = encoded(value)
            await producer.send(settings.topic("notifications"), raw, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def produce_paced(settings: Settings, values: list[dict], rate: float) -> dict[str, float]:
    """Send one notice every 1/rate s; returns each one's send time (its record timestamp)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    try:
        start = time.time()
        for i, value in enumerate(values):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.time()))  # pacing, not synchronisation
            key, raw = encoded(value)
            now = time.time()
            await producer.send(
                settings.topic("notifications"), raw, key=key, timestamp_ms=int(now * 1000)
            )
            sent[f"{value['tenant_id']}/{value['notification_id']}"] = now
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run(bootstrap: str, backlog: int, rate: float, seconds: float) -> None:
    prefix = f"nbench-{int(time.time())}-"
    settings = Settings(
        bootstrap_servers=bootstrap, app_id=prefix + "rater", topic_prefix=prefix, partitions=8,
        data_dir=Path(tempfile.mkdtemp()), web_port=0,
    )  # fmt: skip
    await ensure_topics(settings)
    paced_count = int(rate * seconds)
    values = batch(backlog + paced_count, tenants=200)
    backlog_values, paced_values = values[:backlog], values[backlog:]
    await produce_backlog(settings, backlog_values)
    log = Path(tempfile.mkdtemp()) / "notifier.log"
    with MailServer() as server:
        notifier = Notifier(settings, server, log, retry_max_s=5, instance_id=None)
        notifier.start()
        try:
            await notifier.wait_ready()
            pid = notifier.process.proc.pid  # type: ignore[union-attr]
            cpu_ready = cpu_seconds(pid)  # start-up (imports, joining) is not per mail
            await wait_until(lambda: server.count() >= backlog, 600, "backlog mailed", notifier)
            cpu_per_mail = (cpu_seconds(pid) - cpu_ready) / backlog
            mails = server.mails()
            first, last = mails[0].at, mails[-1].at
            rate_achieved = (len(mails) - 1) / (last - first)
            print(f"throughput: {backlog} mails in {last - first:.2f}s = {rate_achieved:,.0f} "
                  f"mails/s (first to last mail at the server); notifier CPU "
                  f"{cpu_per_mail * 1000:.1f} ms per mail = {1 / cpu_per_mail:,.0f} mails/s "
                  f"per core")  # fmt: skip
            sent = await produce_paced(settings, paced_values, rate)
            total = backlog + paced_count
            await wait_until(lambda: server.count() >= total, 600, "paced mailed", notifier)
        finally:
            notifier.stop()
    arrived = {}
    for received in server.mails()[backlog:]:
        message = received.message
        arrived[f"{message['X-Rater-Tenant-Id']}/{message['X-Rater-Notification-Id']}"] = (
            received.at
        )
    delays = [arrived[key] - at for key, at in sent.items()]
    print(f"delay at {rate:g} notices/s for {seconds:g}s ({len(delays)} notices), record to "
          f"mail at the server: p50 {percentile(delays, 0.5) * 1000:.0f} ms, "
          f"p99 {percentile(delays, 0.99) * 1000:.0f} ms, "
          f"max {max(delays) * 1000:.0f} ms, "
          f"mean {statistics.mean(delays) * 1000:.0f} ms")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m load notify", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--backlog", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # aiokafka's retry warnings on fresh topics
    with bench_broker() as (bootstrap, description, _pid):
        print(f"broker: {description}", file=sys.stderr)
        asyncio.run(run(bootstrap, args.backlog, args.rate, args.seconds))


if __name__ == "__main__":
    main()
