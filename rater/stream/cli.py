"""`rater worker` and `rater topics create`."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import TYPE_CHECKING

import click

from rater.config import Settings, SettingsError
from rater.stream.topics import TopicLayoutError, ensure_topics

if TYPE_CHECKING:  # the worker's modules load only when it runs
    from rater.stream.partition import StepHook


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


KAFKA_WAIT_S = 60.0  # a worker started while the brokers restart waits for them this long


def create_topics_or_fail(settings: Settings, wait_s: float = KAFKA_WAIT_S) -> list[str]:
    """Create the topics, waiting up to ``wait_s`` for a cluster that does not answer yet.

    A worker (or pod) started during a broker restart, or before the brokers
    have registered, met "no broker metadata" and exited at once; it now
    retries, and fails with one line only after the wait.
    """
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        try:
            return asyncio.run(ensure_topics(settings))
        except TopicLayoutError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:  # the broker is down or refuses: say so in one line
            problem = (
                f"cannot reach Kafka at {settings.bootstrap_servers}: {type(exc).__name__}: {exc}"
            )
            if time.monotonic() >= deadline:
                raise click.ClickException(problem) from None
            if not told:
                click.echo(f"{problem}; waiting up to {wait_s:.0f} s", err=True)
                told = True
            time.sleep(1.0)  # the next attempt; the deadline above bounds the wait


@click.group()
def topics() -> None:
    """Manage the rater's Kafka topics."""


@topics.command("create")
def topics_create() -> None:
    """Create all topics, co-partitioned (RATER_PARTITIONS), `tariffs` compacted.

    Idempotent: existing topics are kept. Fails when an existing topic has a
    different partition count than configured.
    """
    settings = load_settings()
    created = create_topics_or_fail(settings)
    for name in created:
        click.echo(f"created {name}")
    if not created:
        click.echo("all topics exist")


GC_THRESHOLDS = (200_000, 20, 20)


def tune_garbage_collector() -> None:
    """Collect cycles rarely: a batch's short-lived objects must not reach the oldest generation.

    With CPython's default (700, 10, 10) a batch of thousands of records runs
    dozens of young collections while its records and outputs are still
    alive; they are promoted, and a full collection of the worker's heap ran
    every 2 s at 80-145 ms each (measured with gc.callbacks in the
    benchmark's drain): the worst of the latency at half load. The hot path
    frees its objects by reference counting, so a young collection only runs
    once 200,000 more container objects are alive than before.
    """
    gc.set_threshold(*GC_THRESHOLDS)


@click.command()
@click.option("--loglevel", default="info", show_default=True, help="Worker log level.")
def worker(loglevel: str) -> None:
    """Run a rating worker (configured from the environment; see README)."""
    run_worker(loglevel)


def run_worker(loglevel: str, on_step: StepHook | None = None) -> None:
    """The worker process; ``on_step`` is the fault tests' hook (PartitionRater.checkpoint)."""
    from faust import Worker

    from rater.stream.app import build_app

    settings = load_settings()
    create_topics_or_fail(settings)
    logging.basicConfig(level=loglevel.upper())
    tune_garbage_collector()
    app, _ = build_app(settings, on_step=on_step)
    faust_worker = Worker(app, loglevel=loglevel)
    # Faust's terminal spinner sets the root logger to DEBUG whatever --loglevel
    # says, and aiokafka then builds a debug record per send: 14 s of a 54 s drain.
    faust_worker.spinner = None
    faust_worker.execute_from_commandline()
