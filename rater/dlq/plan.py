"""Choosing what `rater dlq replay` sends back: pure, no I/O.

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

The Kafka I/O is in :mod:`rater.dlq.replay`; this half is tested without a broker.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import ConsumerRecord

from rater.config import Settings
from rater.core.clock import parse_time
from rater.core.dlq_record import parse_entry
from rater.core.errors import (
    FUTURE_TIME,
    INTERNAL_ERROR,
    NO_TARIFF,
    UNKNOWN_ACCOUNT,
)
from rater.core.topics import INPUT_TOPICS, TARIFFS, TENANT_INPUTS

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
