"""`rater kafka start|stop|status`: a local broker for development, tests and the demo."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rater.devkit.localkafka.broker import Broker
from rater.devkit.localkafka.settings import (
    DEFAULT_PORT,
    ENV_DATA_DIR,
    KAFKA_VERSION,
    BrokerSettings,
)
from rater.devkit.localkafka.tools import LocalKafkaError


def _broker_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every subcommand shares, so all three address the same broker."""

    @click.option(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        show_default=True,
        envvar="RATER_KAFKA_PORT",
        help="Client (PLAINTEXT) port on 127.0.0.1. Env: RATER_KAFKA_PORT.",
    )
    @click.option(
        "--controller-port",
        type=int,
        default=None,
        help="KRaft controller port on 127.0.0.1 [default: --port + 1].",
    )
    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        envvar=ENV_DATA_DIR,
        help=(
            "Broker state, config, logs and pid file; safe to delete when stopped. "
            f"[default: <project>/.kafka] Env: {ENV_DATA_DIR}."
        ),
    )
    @functools.wraps(func)
    def wrapper(
        port: int, controller_port: int | None, data_dir: Path | None, **kwargs: Any
    ) -> Any:
        settings = BrokerSettings(port=port, controller_port=controller_port, data_dir=data_dir)
        try:
            return func(Broker(settings), **kwargs)
        except LocalKafkaError as err:
            raise click.ClickException(str(err)) from None

    return wrapper


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    help=(
        f"Run a local single-node Apache Kafka {KAFKA_VERSION} broker (KRaft) on 127.0.0.1.\n\n"
        "Jars are fetched once with Maven into deploy/kafka/lib/ (or $RATER_KAFKA_LIB_DIR); "
        "needs `java` 17+ always and `mvn` for that first download."
    ),
)
def kafka() -> None:
    """Group for the local broker commands (help text above includes the pinned version)."""


@kafka.command()
@_broker_options
@click.option(
    "--timeout",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds to wait for the broker to answer a metadata request.",
)
def start(broker: Broker, timeout: float) -> None:
    """Start the broker in the background and print its bootstrap address.

    Downloads the jars and formats the storage on first use. If a broker already
    answers on the port, reports it instead of starting another. The address is the
    only thing printed on stdout:

    \b
        export KAFKA_BOOTSTRAP_SERVERS=$(rater kafka start)
    """
    result = broker.start(timeout=timeout)
    data = broker.settings.data
    if result.started:
        t = result.timings
        click.echo(
            f"Kafka {broker.settings.version} started (pid {result.pid}) in {t['total']:.1f}s "
            f"[jars {t['jars']:.1f}s, format {t['format']:.1f}s, answer {t['answer']:.1f}s]; "
            f"data and logs in {data}",
            err=True,
        )
    else:
        owner = f"pid {result.pid}" if result.pid else f"not started from {data}"
        click.echo(f"Kafka broker already running at {result.bootstrap} ({owner})", err=True)
    click.echo(result.bootstrap)


@kafka.command()
@_broker_options
@click.option(
    "--timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for a clean shutdown before killing the broker.",
)
def stop(broker: Broker, timeout: float) -> None:
    """Stop the broker started from --data-dir (clean shutdown, kill after --timeout)."""
    pid = broker.stop(timeout=timeout)
    if pid is not None:
        click.echo(f"stopped Kafka broker (pid {pid})")
        return
    if broker.answers():
        raise click.ClickException(
            f"a broker answers at {broker.bootstrap} but was not started from "
            f"{broker.settings.data}; not stopped"
        )
    click.echo(f"no Kafka broker running from {broker.settings.data}")


@kafka.command()
@_broker_options
def status(broker: Broker) -> None:
    """Say whether a broker answers on --port; exit status 1 when none does."""
    if broker.answers():
        pid = broker.pid()
        owner = f"pid {pid}, data {broker.settings.data}" if pid else "not started from --data-dir"
        click.echo(f"running at {broker.bootstrap} ({owner})")
        return
    pid = broker.pid()
    if pid is not None:
        click.echo(f"not answering at {broker.bootstrap}: broker pid {pid} is starting or stuck")
    else:
        click.echo(f"not running: no Kafka broker answers at {broker.bootstrap}")
    raise SystemExit(1)
