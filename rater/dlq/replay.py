"""`rater dlq replay`: send rejected input back to its source topic.

A `no_tariff` CDR can be rated once its tariff exists, a CDR or event that
came before its `account_opened` once the account is open (SPEC 5.1, 9).
Replaying never applies anything twice, because of two rules of the core
(`rater/core/engine.py`):

- a rejected message's id is not remembered: `apply_cdr` and `apply_event`
  raise `Rejected` before `state.seen[seen_key] = ...` and before the tenant
  clock moves, and `Processor` marks no tenant dirty for a rejection;
- an id that was applied is ignored (`if seen_key in state.seen: return []`,
  checked before the tariff lookup), for 35 days of tenant clock; an older
  message is `too_late` (SPEC 9), never applied.

So a replayed message is applied at most once, however often it is replayed,
and not at all when the same id was applied meanwhile (for example re-sent by
its producer).

The pure parts (decoding a DLQ record, choosing what to replay) are separate
from the Kafka I/O so they can be tested without a broker.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractContextManager, AsyncExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any

import click
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from rater.config import Settings
from rater.core.clock import parse_time
from rater.core.errors import (
    CODES,
    FUTURE_TIME,
    INTERNAL_ERROR,
    NO_TARIFF,
    UNKNOWN_ACCOUNT,
)
from rater.core.topics import INPUT_TOPICS, RATER_DLQ, TARIFFS, TENANT_INPUTS
from rater.stream.cli import load_settings

REPLAYABLE_TOPICS = TENANT_INPUTS

# Codes a later retry can clear without the message changing: a tariff or an
# account that arrives later, a wall clock that catches up, a rater bug fixed.
# The others are decided by the message itself or by state that only moves on
# (invalid_*, key_mismatch, currency_mismatch, too_late), or replaying them
# later could act on state they were not meant for (an old auto-recharge
# setting over a newer one, a result for a request issued after it).
RETRYABLE_CODES = (NO_TARIFF, UNKNOWN_ACCOUNT, FUTURE_TIME, INTERNAL_ERROR)

TARIFF_ROW = "tariffs row (re-send it from the tariff source)"
UNREADABLE = "unreadable DLQ record"
BEFORE_SINCE = "before --since"
REPEATED = "same message already replayed in this run"
IDLE_TIMEOUT_S = 60.0


# --- pure: decoding and choosing -----------------------------------------------------


def raw_bytes(text: str | None, encoding: str | None) -> bytes | None:
    """The bytes a DLQ record holds as ``text`` with its ``*_encoding`` (SPEC 8).

    ``utf-8``: the text's UTF-8 bytes; ``base64``: the bytes it encodes;
    ``None`` (with no text): the record had none. Raises ``ValueError`` for
    anything else, so an unreadable record is never replayed as guessed bytes.
    """
    if text is None:
        if encoding is not None:
            raise ValueError("an encoding without text")
        return None
    if encoding == "utf-8":
        return text.encode()
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("not base64") from exc
    raise ValueError(f"unknown encoding {encoding!r}")


def input_name(source_topic: str, prefix: str) -> str | None:
    """The spec name of the input topic a DLQ record points at, or None.

    The worker writes the real (prefixed) name; a bare spec name is accepted
    too, as naming the input topic of this deployment.
    """
    for name in INPUT_TOPICS:
        if source_topic == prefix + name:
            return name
    return source_topic if source_topic in INPUT_TOPICS else None


@dataclass(frozen=True)
class Selection:
    """Which DLQ records to replay: by code, and by DLQ record time (epoch ms)."""

    codes: frozenset[str] = frozenset(RETRYABLE_CODES)
    since_ms: int | None = None


@dataclass(frozen=True)
class Replay:
    """One message to send back: real topic name, original partition, key and value."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    code: str


@dataclass(frozen=True)
class DlqEntry:
    """The fields of a ``rater-dlq`` value that replay needs."""

    code: str
    source_topic: str
    partition: int
    key: bytes | None
    value: bytes | None


def parse_entry(value: bytes | None) -> DlqEntry | None:
    """Read a DLQ record's value; None when it is not a DLQ record this tool understands."""
    try:
        obj = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    error = obj.get("error")
    code = error.get("code") if type(error) is dict else None
    source, partition = obj.get("source_topic"), obj.get("partition")
    if type(code) is not str or type(source) is not str:
        return None
    if type(partition) is not int or partition < 0:
        return None
    texts = (obj.get("key"), obj.get("key_encoding"), obj.get("value"), obj.get("value_encoding"))
    if not all(item is None or type(item) is str for item in texts):
        return None
    try:
        key = raw_bytes(texts[0], texts[1])
        raw = raw_bytes(texts[2], texts[3])
    except ValueError:
        return None
    return DlqEntry(code, source, partition, key, raw)


def choose(
    record_key: bytes | None,
    record_value: bytes | None,
    timestamp_ms: int,
    selection: Selection,
    settings: Settings,
) -> Replay | str:
    """What to do with one DLQ record: the message to replay, or why it is skipped.

    ``record_key`` (the DLQ record's own Kafka key, the rejected message's
    key, SPEC 8) is not needed: ``key_encoding`` says how to read ``key``.
    """
    entry = parse_entry(record_value)
    if entry is None:
        return UNREADABLE
    name = input_name(entry.source_topic, settings.topic_prefix)
    if name is None:
        return f"source topic {entry.source_topic} is not an input of this rater"
    if name == TARIFFS:
        return TARIFF_ROW
    if selection.since_ms is not None and timestamp_ms < selection.since_ms:
        return BEFORE_SINCE
    if entry.code not in selection.codes:
        return f"code {entry.code} not selected"
    return Replay(
        settings.topic(name),
        entry.partition,
        entry.key,
        entry.value,
        entry.code,
    )


def fingerprint(replay: Replay) -> bytes:
    """A short digest of a message, to send each distinct message once per run.

    A message that failed again on replay is in the DLQ once more; both copies
    are the same message (same id), so one send is enough.
    """
    digest = hashlib.blake2b(digest_size=16)
    for part in (replay.topic.encode(), str(replay.partition).encode(), replay.key, replay.value):
        digest.update(b"\x00" if part is None else b"\x01%d:" % len(part) + part)
    return digest.digest()


@dataclass
class Summary:
    """What one run read, replayed (per code) and skipped (per reason)."""

    dlq_topic: str
    dry_run: bool = False
    read: int = 0
    replayed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        verb = "would replay" if self.dry_run else "replayed"
        out = [f"{self.dlq_topic}: {self.read} records read"]
        out.append(f"{verb} {sum(self.replayed.values())}")
        out.extend(f"  {n:8d}  {code}" for code, n in sorted(self.replayed.items()))
        out.append(f"skipped {sum(self.skipped.values())}")
        out.extend(f"  {n:8d}  {reason}" for reason, n in sorted(self.skipped.items()))
        return out


class Planner:
    """Chooses per record and drops repeats of a message within the run."""

    def __init__(self, selection: Selection, settings: Settings, summary: Summary) -> None:
        self.selection = selection
        self.settings = settings
        self.summary = summary
        self.partitions: dict[str, int] = {}  # real topic name -> partition count
        self._sent: set[bytes] = set()

    def plan(self, records: Iterable[ConsumerRecord]) -> list[Replay]:
        todo = []
        for record in records:
            self.summary.read += 1
            decision = choose(
                record.key, record.value, record.timestamp, self.selection, self.settings
            )
            if isinstance(decision, Replay):
                decision = self._deliverable(decision)
            if isinstance(decision, str):
                self.summary.skipped[decision] += 1
                continue
            self.summary.replayed[decision.code] += 1
            todo.append(decision)
        return todo

    def _deliverable(self, replay: Replay) -> Replay | str:
        if replay.partition >= self.partitions.get(replay.topic, 0):
            return f"no partition {replay.partition} in {replay.topic}"
        digest = fingerprint(replay)
        if digest in self._sent:
            return REPEATED
        self._sent.add(digest)
        return replay


def since_ms(text: str) -> int:
    """An RFC 3339 time as Kafka timestamp milliseconds, rounded up (records at or after it)."""
    micros = parse_time(text)
    if micros is None:
        raise ValueError(f"{text!r} is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)")
    return -(-micros // 1000)


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
