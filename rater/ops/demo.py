"""`rater demo`: the whole product on a local broker in one command.

Starts the project's own Kafka unless KAFKA_BOOTSTRAP_SERVERS is set,
creates the topics under a fresh prefix, loads the sample tariffs and a few
tenants, sends a burst of generated CDRs through a real worker process and
prints what came out. Beside the worker, `rater notify` mails the notices to
an SMTP server on loopback that the demo starts (aiosmtpd); the demo prints
how many mails went out.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import click
import orjson

from rater.core.outputs import OUTPUT_TOPICS as OUTPUTS
from rater.localkafka.broker import Broker
from rater.localkafka.readback import read_all
from rater.ops.inputs import produce_inputs
from rater.ops.mail_server import MailServer
from rater.ops.scenario import TARIFFS, build
from rater.ops.worker_process import WorkerProcess, free_port
from rater.stream.settings import Settings
from rater.stream.topics import ensure_topics

WEB_VIEWS = ("/rater/health/", "/rater/stats/")


def run_demo(cdrs_per_tenant: int, timeout: float) -> None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        click.echo("starting the local Kafka broker (first run downloads its jars)...", err=True)
        bootstrap = Broker().start().bootstrap
    prefix = f"demo-{int(time.time())}-"
    settings = Settings(
        bootstrap_servers=bootstrap,
        app_id=prefix + "rater",
        topic_prefix=prefix,
        partitions=4,
        data_dir=Path(".data") / prefix,
        expiry_sweep=False,
        web_port=free_port(),
    )
    asyncio.run(ensure_topics(settings))
    scenario = build(cdrs_per_tenant=cdrs_per_tenant)
    click.echo(
        f"broker {bootstrap}; topics {prefix}*; {len(TARIFFS)} tariffs, "
        f"{len(scenario.messages)} input messages",
        err=True,
    )
    asyncio.run(produce_inputs(settings, scenario.messages, TARIFFS))
    worker = WorkerProcess(settings, Path(".data") / prefix / "worker.log")
    mail_server = MailServer().start()
    notifier = WorkerProcess(
        settings, Path(".data") / prefix / "notifier.log", command="notify",
        env=_notifier_env(mail_server),
    )  # fmt: skip
    notices = [value for _, value in scenario.expected.get("notifications", [])]
    with_contact = sum("contact_email" in value["details"] for value in notices)
    started = time.monotonic()
    worker.start()
    notifier.start()
    try:
        counts = asyncio.run(_wait(settings, len(scenario.expected["rated-cdrs"]), worker, timeout))
        views = {path: _view(settings.web_port, path) for path in WEB_VIEWS}
        mailed = _wait_for_mails(mail_server, with_contact, notifier, timeout)
    finally:
        worker.stop()
        notifier.stop()
        mail_server.stop()
    elapsed = time.monotonic() - started
    click.echo(f"\nrated {counts['rated-cdrs']} CDRs in {elapsed:.1f}s (worker start included)")
    for name in OUTPUTS:
        click.echo(f"  {name:15} {counts[name]:6d} records")
    click.echo("\nbalances:")
    for tenant, balance in asyncio.run(_balances(settings)).items():
        click.echo(f"  {tenant:10} {balance}")
    click.echo(f"\nDLQ codes: {dict(asyncio.run(_dlq_codes(settings)))}")
    click.echo(
        f"\nmails: {mailed} sent by `rater notify` to the demo's SMTP server on "
        f"{mail_server.host}:{mail_server.port} ({len(notices)} notifications, "
        f"{len(notices) - with_contact} without a contact)"
    )
    for received in mail_server.mails():
        message = received.message
        click.echo(f"  to {message['To']:22} [{message['Content-Language']}] {message['Subject']}")
    click.echo("\nthe worker's web views before it stopped:")
    for path, body in views.items():
        click.echo(f"  http://127.0.0.1:{settings.web_port}{path}\n    {body}")
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        click.echo("\nthe local broker keeps running; stop it with `rater kafka stop`")


async def _wait(
    settings: Settings, want: int, worker: WorkerProcess, timeout: float
) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        rated = await read_all(settings.bootstrap_servers, settings.topic("rated-cdrs"))
        if len(rated) >= want:
            break
        if not worker.alive():
            raise click.ClickException(f"the worker stopped; see {worker.log_path}")
        if time.monotonic() > deadline:
            raise click.ClickException(f"only {len(rated)} of {want} CDRs rated in {timeout}s")
        await asyncio.sleep(0.5)  # poll interval
    return {
        name: len(await read_all(settings.bootstrap_servers, settings.topic(name)))
        for name in OUTPUTS
    }


def _notifier_env(server: MailServer) -> dict[str, str]:
    return {
        "RATER_SMTP_HOST": server.host,
        "RATER_SMTP_PORT": str(server.port),
        "RATER_SMTP_SECURITY": "none",  # loopback; a real server gets starttls or tls
        "RATER_MAIL_FROM": "Rater demo <rater@demo.example>",
        "RATER_NOTIFY_WEB_PORT": str(free_port()),
    }


def _wait_for_mails(server: MailServer, want: int, notifier: WorkerProcess, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while server.count() < want:
        if not notifier.alive():
            raise click.ClickException(f"the notifier stopped; see {notifier.log_path}")
        if time.monotonic() > deadline:
            break  # show what went out; the count says what is missing
        time.sleep(0.2)  # poll interval
    return server.count()


def _view(port: int, path: str) -> str:
    """One web view's answer, as text: shown, not checked (the tests check them)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.read().decode()
    except urllib.error.HTTPError as exc:  # 503 while rebalancing still has a body
        return f"{exc.code} {exc.read().decode()}"
    except OSError as exc:
        return f"no answer: {exc}"


async def _balances(settings: Settings) -> dict[str, str]:
    balances: dict[str, str] = {}
    for record in await read_all(settings.bootstrap_servers, settings.topic("ledger")):
        entry = orjson.loads(record.value)
        balances[entry["tenant_id"]] = entry["balance_after"]
    return dict(sorted(balances.items()))


async def _dlq_codes(settings: Settings) -> Counter[str]:
    records = await read_all(settings.bootstrap_servers, settings.topic("rater-dlq"))
    return Counter(orjson.loads(record.value)["error"]["code"] for record in records)


@click.command()
@click.option(
    "--cdrs-per-tenant",
    default=250,
    show_default=True,
    help="CDRs generated for each of the four sample tenants.",
)
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for output.")
def demo(cdrs_per_tenant: int, timeout: float) -> None:
    """Run the rater end to end on a local Kafka and print a summary."""
    run_demo(cdrs_per_tenant, timeout)
