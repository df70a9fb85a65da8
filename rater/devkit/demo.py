"""`rater demo` (what `make demo` runs): the product at work, explained, in under two minutes.

Starts the project's own Kafka unless KAFKA_BOOTSTRAP_SERVERS is set, creates
the topics under a fresh prefix (and waits until every partition answers),
opens a realistic mix of tenants (:mod:`rater.devkit.demo_tenants`), starts a real
worker process, a simulated payment side (:mod:`rater.devkit.payment_side`) and
the e-mail notifier (`rater notify`) with a real SMTP server on loopback
(:mod:`rater.devkit.mail_server`) that receives its mails, sends calls at a
steady rate while a live view shows what the output topics hold and how many
mails went out, then waits for the worker and the notifier to catch up and
prints a summary that says what the figures mean and where to look next.
Library logs go to files, so the terminal shows only the demo; Ctrl-C stops
it (worker, notifier, SMTP server) cleanly with what was seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.live import Live

from rater.config import Settings
from rater.core.topics import OUTPUT_TOPICS
from rater.devkit.demo_tenants import TARIFFS, Calls, Tenant, setup_events, tenants
from rater.devkit.demo_view import live_view, progress_line, summary, summary_figures
from rater.devkit.localkafka.broker import Broker
from rater.devkit.localkafka.tools import LocalKafkaError
from rater.devkit.mail_server import MailServer
from rater.devkit.payment_side import PaymentSide
from rater.devkit.worker_process import WorkerProcess, free_port
from rater.observability.tail import TopicTail
from rater.stream.topics import ensure_topics

TICK_S = 0.1  # calls are sent in small groups ten times a second
REFRESH_S = 0.5  # the live view redraws twice a second
PLAIN_EVERY_S = 5.0  # without a terminal: one progress line every 5 seconds
DRAIN_TIMEOUT_S = 120.0
CALL_START_LEAD_S = 100.0  # the median call started this long before its CDR is sent


@dataclass
class Run:
    """Everything the view and the summary need while the demo runs."""

    settings: Settings
    tenants: list[Tenant]
    duration: float
    rate: float
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    lag: int | None = None
    phase: str = "starting"
    tail: TopicTail | None = None
    payment: PaymentSide | None = None
    rates: list[tuple[float, int]] = field(default_factory=list)
    mail: MailServer | None = None  # the SMTP server the notifier sends to
    notifier_port: int = 0  # the notifier's web port (/metrics)
    mail_metrics: dict[str, Any] = field(default_factory=dict)  # the notifier's, see _watch_mail

    def mails_received(self) -> int:
        """Mails the demo's SMTP server accepted: what actually went out."""
        return self.mail.count() if self.mail is not None else 0

    def notices_handled(self) -> int:
        """Notifications the notifier is done with: mailed, given up, or without a contact."""
        m = self.mail_metrics
        return (
            sum(m.get("sent", {}).values())
            + sum(m.get("failed", {}).values())
            + m.get("without_contact", 0)
            + m.get("already_sent", 0)
        )

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}/dashboard"

    @property
    def credits(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}/credits?tenant=card-fails"

    def rated_per_s(self) -> float:
        """CDRs rated per second over the last few seconds (from rated-cdrs as read)."""
        if self.tail is None or len(self.rates) < 2:
            return 0.0
        (t0, r0), (t1, r1) = self.rates[0], self.rates[-1]
        return (r1 - r0) / (t1 - t0) if t1 > t0 else 0.0


def run_demo(duration: float, rate: float, summary_json: Path | None, serve: bool) -> None:
    console = Console(highlight=False)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    own_broker = not bootstrap
    if not bootstrap:
        console.print("starting the local Kafka broker (the first run fetches its jars)...")
        bootstrap = Broker().start().bootstrap
    prefix = f"demo-{int(time.time())}-"
    data_dir = Path(".data") / prefix
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "demo.log"
    _logs_to(log_path)
    settings = Settings(
        bootstrap_servers=bootstrap,
        app_id=prefix + "rater",
        topic_prefix=prefix,
        partitions=4,
        data_dir=data_dir / "worker",
        expiry_sweep=False,
        web_port=free_port(),
    )
    run = Run(settings, tenants(), duration, rate, log_path, mail=MailServer())
    run.notifier_port = free_port()
    worker = WorkerProcess(settings, data_dir / "worker.log")
    notifier = _notifier(run, data_dir / "notifier.log")
    interrupted = False
    try:
        asyncio.run(_main(run, worker, notifier, console))
    except KeyboardInterrupt:
        interrupted = True
    except (KafkaError, OSError, TimeoutError) as exc:
        worker.stop()
        raise click.ClickException(f"{exc} (details in {log_path})") from None
    finally:
        notifier.stop()  # every mail it was going to send is counted by now
        assert run.mail is not None
        run.mail.stop()
        if not serve or interrupted:
            worker.stop()
    if run.tail is None:
        console.print("stopped before any output was read.")
        sys.exit(130)
    figures = summary_figures(run)
    console.print(summary(run, figures, interrupted, own_broker, serve))
    if summary_json is not None:
        summary_json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    if interrupted:
        sys.exit(130)
    if serve:
        _serve(console, run, worker)


def _notifier(run: Run, log_path: Path) -> WorkerProcess:
    """`rater notify` on the demo's topics, mailing through the demo's SMTP server."""
    assert run.mail is not None
    env = {
        "RATER_SMTP_HOST": run.mail.host,
        "RATER_SMTP_PORT": str(run.mail.port),
        "RATER_SMTP_SECURITY": "none",
        "RATER_MAIL_FROM": "billing@demo.example",
        "RATER_NOTIFY_WEB_PORT": str(run.notifier_port),
    }
    return WorkerProcess(run.settings, log_path, env=env, command="notify")


def _logs_to(path: Path) -> None:
    """Every library log line and warning goes to the demo's log file, none to the terminal."""
    logging.basicConfig(
        filename=path,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")


async def _main(run: Run, worker: WorkerProcess, notifier: WorkerProcess, console: Console) -> None:
    settings = run.settings
    await ensure_topics(settings)
    await _wait_serving(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    tasks: list[asyncio.Task[Any]] = []
    try:
        for row in TARIFFS:
            await producer.send(
                settings.topic("tariffs"), orjson.dumps(row), key=row["tariff_id"].encode()
            )
        now = time.time_ns() // 1000
        for event in setup_events(run.tenants, now, expire_after_s=_expiry_after(run.duration)):
            await producer.send(
                settings.topic("account-events"),
                orjson.dumps(event),
                key=event["tenant_id"].encode(),
            )
        await producer.flush()
        worker.start()
        assert run.mail is not None
        run.mail.start()
        notifier.start()
        card_fails = {t.tenant_id for t in run.tenants if t.card_fails}
        run.payment = PaymentSide(
            settings.bootstrap_servers,
            settings.topic("topup-requests"),
            settings.topic("account-events"),
            settings.partitions,
            producer,
            card_fails.__contains__,
        )
        run.tail = TopicTail(
            settings.bootstrap_servers, {settings.topic(n): n for n in OUTPUT_TOPICS}
        )
        run.tail.start()
        tasks.append(asyncio.ensure_future(run.payment.run()))
        tasks.append(asyncio.ensure_future(_watch_lag(run, worker)))
        tasks.append(asyncio.ensure_future(_watch_mail(run)))
        if console.is_terminal:
            with Live(live_view(run), console=console, refresh_per_second=4) as live:
                await _traffic_and_drain(
                    run, producer, (worker, notifier), lambda: live.update(live_view(run))
                )
        else:
            last = [0.0]

            def plain() -> None:
                if time.monotonic() - last[0] >= PLAIN_EVERY_S:
                    last[0] = time.monotonic()
                    console.print(progress_line(run))

            await _traffic_and_drain(run, producer, (worker, notifier), plain)
            console.print(progress_line(run))
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if run.tail is not None:
            await run.tail.stop()
        await producer.stop()


async def _wait_serving(settings: Settings, timeout: float = 60.0) -> None:
    """Every input partition answers a ListOffsets: its leader is there and serving.

    Topic creation returns when metadata names a leader; a produce sent at
    that moment can still get NotLeaderForPartition (and aiokafka retries,
    noisily). Asking every partition for its end offset first avoids that.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        tps = [
            TopicPartition(settings.topic(name), p)
            for name in ("cdrs", "account-events", "topup-requests")
            for p in range(settings.partitions)
        ]
        deadline = time.monotonic() + timeout
        while True:
            try:
                await consumer.end_offsets(tps)
                return
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)  # the leaders are being elected
    finally:
        await consumer.stop()


async def _traffic_and_drain(
    run: Run, producer: AIOKafkaProducer, processes: tuple[WorkerProcess, ...], redraw: Any
) -> None:
    settings = run.settings
    calls = Calls(run.tenants)
    topic = settings.topic("cdrs")
    run.phase = "calling"
    run.started = time.monotonic()
    next_redraw = 0.0
    while (elapsed := time.monotonic() - run.started) < run.duration:
        due = int(elapsed * run.rate) - run.sent
        now = time.time_ns() // 1000
        for _ in range(max(0, due)):
            key, value = calls.next(now)
            await producer.send(topic, value, key=key)
            run.sent += 1
        _check(processes)
        if time.monotonic() >= next_redraw:
            _sample_rate(run)
            redraw()
            next_redraw = time.monotonic() + REFRESH_S
        await asyncio.sleep(TICK_S)  # pacing: the next group of calls is due then
    await producer.flush()
    run.phase = "catching up"
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while not await _drained(run):
        _check(processes)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the worker or the notifier did not catch up within {DRAIN_TIMEOUT_S:.0f}s"
            )
        _sample_rate(run)
        redraw()
        await asyncio.sleep(REFRESH_S)  # waits on the condition above, with a deadline
    run.phase = "done"
    _sample_rate(run)
    redraw()


def _expiry_after(duration: float) -> float:
    """When ``expiring``'s lot expires, from now: early in the calls, on the tenant clock.

    The clock is the calls' ``started_at``, and a CDR is sent when its call
    ended (about 100 s later for a median call, see demo_tenants.Calls), so
    the expiry is placed that much before a third of the way.
    """
    return duration / 3 - CALL_START_LEAD_S


def _check(processes: tuple[WorkerProcess, ...]) -> None:
    for process in processes:
        if not process.alive():
            raise OSError(f"`rater {process.command}` stopped; see {process.log_path}")


def _sample_rate(run: Run) -> None:
    assert run.tail is not None
    now = time.monotonic()
    run.rates.append((now, run.tail.tally.rated))
    while len(run.rates) > 2 and now - run.rates[0][0] > 5.0:
        run.rates.pop(0)


async def _drained(run: Run) -> bool:
    """All calls rated or rejected, every top-up answered and applied, all outputs read,
    every notification mailed (or given up, or without a contact) by the notifier."""
    tail, payment = run.tail, run.payment
    assert tail is not None and payment is not None
    tally = tail.tally
    cdrs_done = tally.rated + tally.dlq_by_source.get(run.settings.topic("cdrs"), 0)
    answered = tally.topups_succeeded + tally.topups_failed
    return (
        cdrs_done >= run.sent
        and run.lag == 0
        and payment.answered == tally.topups_requested
        and answered == tally.topups_requested
        and await tail.wait_caught_up(5.0)
        and run.notices_handled() >= sum(tally.notifications.values())
    )


async def _watch_lag(run: Run, worker: WorkerProcess) -> None:
    """The worker's consumer lag, from its Prometheus metrics (SPEC 11), once a second."""
    url = f"http://127.0.0.1:{run.settings.web_port}/metrics"
    while True:
        with contextlib.suppress(OSError):
            text = await asyncio.to_thread(_get, url)
            lags = [
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("rater_consumer_lag_records{")
            ]
            run.lag = int(sum(lags))  # no series yet: nothing fetched, nothing waiting
        await asyncio.sleep(1.0)  # a scrape interval


async def _watch_mail(run: Run) -> None:
    """The notifier's mail counters, from its Prometheus metrics (SPEC 11), once a second."""
    url = f"http://127.0.0.1:{run.notifier_port}/metrics"
    while True:
        with contextlib.suppress(OSError):
            run.mail_metrics = _mail_metrics(await asyncio.to_thread(_get, url))
        await asyncio.sleep(1.0)  # a scrape interval


def _mail_metrics(text: str) -> dict[str, Any]:
    """rater_mails_sent_total{type}, rater_mails_failed_total{reason} and the plain counters."""
    found: dict[str, Any] = {"sent": {}, "failed": {}, "without_contact": 0, "already_sent": 0}
    labelled = {"rater_mails_sent_total": "sent", "rater_mails_failed_total": "failed"}
    plain = {
        "rater_notifications_without_contact_total": "without_contact",
        "rater_mails_already_sent_total": "already_sent",
    }
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        if name in labelled and '"' in labels:
            found[labelled[name]][labels.split('"')[1]] = int(float(value))
        elif name in plain:
            found[plain[name]] = int(float(value))
    return found


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def _serve(console: Console, run: Run, worker: WorkerProcess) -> None:
    console.print(
        f"\nThe worker keeps serving: [bold]{run.dashboard}[/] and [bold]{run.credits}[/]."
        "\nPress Ctrl-C to stop it."
    )
    try:
        while worker.alive():
            time.sleep(1.0)  # waiting for Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()


@click.command()
@click.option(
    "--duration",
    default=45.0,
    show_default=True,
    help="Seconds of calls (the whole demo takes about 30 s more: broker, worker, catching up).",
)
@click.option("--rate", default=100.0, show_default=True, help="Calls (CDRs) sent per second.")
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the summary's figures to this file (the tests compare them with the topics).",
)
@click.option(
    "--serve/--no-serve",
    default=False,
    show_default=True,
    help="Keep the worker (dashboard, credits page, API) up after the summary, until Ctrl-C.",
)
def demo(duration: float, rate: float, summary_json: Path | None, serve: bool) -> None:
    """Watch the rater work: a tenant mix, calls at a steady rate, a live view, a summary."""
    try:
        run_demo(duration, rate, summary_json, serve)
    except KeyboardInterrupt:  # before the calls started (broker start, topics): nothing to sum up
        click.echo("stopped.", err=True)
        sys.exit(130)
    except LocalKafkaError as exc:
        raise click.ClickException(f"the local Kafka broker: {exc}") from None
