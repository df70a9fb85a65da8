"""`rater dlq replay`: send rejected input back to its source topic (the Kafka half).

Which records go back, and why replaying never applies anything twice, is
:mod:`rater.dlq.plan`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, AsyncExitStack, nullcontext
from typing import Any

import click
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from rater.config import Settings
from rater.core.errors import (
    CODES,
)
from rater.core.topics import RATER_DLQ
from rater.dlq.plan import (
    IDLE_TIMEOUT_S,
    REPLAYABLE_TOPICS,
    RETRYABLE_CODES,
    Planner,
    Replay,
    Selection,
    Summary,
    since_ms,
)
from rater.stream.cli import load_settings

# --- Kafka I/O -----------------------------------------------------------------------

Progress = Callable[[int], AbstractContextManager[Any]]


class _NoBar:
    """Stands in for a progress bar when none is shown."""

    def update(self, n: int) -> None:
        pass


async def replay(
    settings: Settings,
    selection: Selection,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Summary:
    """Replay the DLQ records selected, from ``since`` to the end offsets at the start.

    ``progress`` is given the number of records to read and returns a context
    manager with ``update(n)`` (``click.progressbar`` fits).
    """
    dlq_topic = settings.topic(RATER_DLQ)
    planner = Planner(selection, settings, Summary(dlq_topic, dry_run))
    names = [dlq_topic, *(settings.topic(name) for name in REPLAYABLE_TOPICS)]
    planner.partitions = await partition_counts(settings, names)
    if not planner.partitions.get(dlq_topic):
        raise LookupError(f"topic {dlq_topic} does not exist: check RATER_TOPIC_PREFIX")
    tps = [TopicPartition(dlq_topic, p) for p in range(planner.partitions[dlq_topic])]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        isolation_level="read_committed",  # never replay what an aborted batch wrote
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # if retention removed the start meanwhile
        **settings.security.client_kwargs(),
    )
    async with AsyncExitStack() as clients:
        await clients.enter_async_context(consumer)
        producer = None if dry_run else await clients.enter_async_context(_producer(settings))
        consumer.assign(tps)
        start, end = await _range(consumer, tps, selection.since_ms)
        total = sum(end[tp] - start[tp] for tp in tps)
        with progress(total) if progress is not None else nullcontext(_NoBar()) as bar:
            async for records in _read(consumer, start, end):
                todo = planner.plan(records)
                if producer is not None:
                    await _send(producer, todo)
                bar.update(len(records))
    return planner.summary


def _producer(settings: Settings) -> AIOKafkaProducer:
    """Idempotent, so a retried send cannot write a message twice."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        **settings.security.client_kwargs(),
    )


async def partition_counts(settings: Settings, names: list[str]) -> dict[str, int]:
    """Partition count of each topic that exists (a missing one is left out)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.security.client_kwargs()
    )
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


async def _range(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], since: int | None
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Where to start (first record at or after ``since``) and stop (end now) per partition."""
    end = await consumer.end_offsets(tps)  # read_committed: the last stable offset
    if since is None:
        start = await consumer.beginning_offsets(tps)
    else:
        found = await consumer.offsets_for_times({tp: since for tp in tps})
        start = {tp: end[tp] if found[tp] is None else found[tp].offset for tp in tps}
    start = {tp: min(start[tp], end[tp]) for tp in tps}
    for tp in tps:
        consumer.seek(tp, start[tp])
    return start, end


async def _read(
    consumer: AIOKafkaConsumer,
    start: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
    idle_timeout: float = IDLE_TIMEOUT_S,
) -> AsyncIterator[list[ConsumerRecord]]:
    """Yield batches of records until every partition reached its end offset.

    Stopping at the end offsets taken at the start makes the run finish, and
    keeps out what a replay itself sends to the DLQ again.
    """
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    while pending := [tp for tp in start if await consumer.position(tp) < end[tp]]:
        batch = await consumer.getmany(*pending, timeout_ms=500)
        records = [r for tp, rs in batch.items() for r in rs if r.offset < end[tp]]
        if records:
            idle_since = loop.time()
            yield records
        elif loop.time() - idle_since > idle_timeout:
            raise TimeoutError(f"no progress reading {pending} for {idle_timeout:.0f}s")


async def _send(producer: AIOKafkaProducer, todo: list[Replay]) -> None:
    """Send to the original partition: that is where the tenant's state lives."""
    futures = [
        await producer.send(r.topic, r.value, key=r.key, partition=r.partition) for r in todo
    ]
    for future in futures:
        await future


# --- command line --------------------------------------------------------------------


def _since_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return since_ms(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
def dlq() -> None:
    """Work with the rater-dlq topic (rejected input)."""


@dlq.command("replay")
@click.option(
    "--code",
    "codes",
    multiple=True,
    metavar="CODE",
    type=click.Choice(CODES),
    help="Replay records with this error code (repeatable). "
    f"Default: {', '.join(RETRYABLE_CODES)}.",
)
@click.option(
    "--since",
    "since",
    metavar="TIME",
    callback=_since_option,
    help="Only DLQ records written at or after this RFC 3339 time.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be replayed; send nothing.")
def replay_command(codes: tuple[str, ...], since: int | None, dry_run: bool) -> None:
    """Send rejected cdrs and account-events records back to their source topic.

    Reads rater-dlq (read_committed) up to its end at the start, and sends each
    selected record's original key and value to its original topic and
    partition. Nothing already applied is applied again: the rater ignores an
    id it has applied and never records the id of a message it rejected.
    tariffs rows are skipped: re-send them from the tariff source.
    """
    settings = load_settings()
    selection = Selection(frozenset(codes or RETRYABLE_CODES), since)

    def bar(total: int) -> AbstractContextManager[Any]:
        return click.progressbar(length=total, label="reading rater-dlq", file=sys.stderr)

    try:
        summary = asyncio.run(replay(settings, selection, dry_run, bar))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # the broker is down or refuses: say so in one line
        raise click.ClickException(
            f"replay failed against {settings.bootstrap_servers}: {type(exc).__name__}: {exc}"
        ) from None
    for line in summary.lines():
        click.echo(line)
