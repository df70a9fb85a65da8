"""Recovery that ends at the last committed changelog record, without a start pause.

faust-streaming 0.15.3 (pinned) recovers a table until it has read the
record at ``highwater - 1``, the offset just below the partition's end. A
transactional changelog never ends with a record a reader receives: the
last offset is a commit marker (every batch of the rater is a transaction),
or the abort marker and aborted records of a killed worker's last batch.
Faust then notices the gap only after two empty 5 s waits
(``Recovery._slurp_changelogs``: "Aborted tx until highwater"), so every
restart and every takeover of a partition whose changelog was written
cost 10 s before the first batch (docs/decisions.md D47, "Restart cost").

Here each changelog end is moved back to just past the last record a
``read_committed`` reader receives below it, found by reading the tail of
the partition (the few offsets past what the local table holds, usually
only markers). Faust then ends recovery as soon as it has read that record,
or at once when there is none. Nothing a reader can receive lies between
the moved end and Faust's, so the table recovered is the same; a tail that
cannot be read in time leaves Faust's own end, and its slow path, in place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables import TableManager

from rater.compat.faust import changelog_table, open_table_channels

log = logging.getLogger(__name__)

TAIL_WINDOWS = (64, 4096)  # offsets read back from the end before reading all of the rest
TAIL_READ_S = 5.0  # longest the tails of one recovery are read, the reader's start included


async def last_delivered(
    consumer: AIOKafkaConsumer,
    spans: Mapping[TopicPartition, tuple[int, int]],
    deadline: float,
) -> dict[TopicPartition, int | None]:
    """Per partition, the offset of the last record ``consumer`` (read_committed)
    receives in its span [start, end), read all at once."""
    last: dict[TopicPartition, int | None] = dict.fromkeys(spans)
    for tp, (start, _) in spans.items():
        consumer.seek(tp, start)
    left = set(spans)
    while left:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sorted(left)} not read to their ends in time")
        batches = await consumer.getmany(*left, timeout_ms=100)
        for tp, records in batches.items():
            for record in records:
                if record.offset < spans[tp][1]:
                    last[tp] = record.offset
        for tp in list(left):
            if await consumer.position(tp) >= spans[tp][1]:
                left.discard(tp)
    return last


async def reachable_ends(
    client_kwargs: Mapping[str, Any],
    ends: Mapping[Any, int | None],
    persisted: Callable[[Any], int | None],
    wait_s: float = TAIL_READ_S,
) -> dict[Any, int | None]:
    """``ends`` with each moved back to one past the last record a reader receives.

    ``persisted(tp)`` is the last offset the local table holds (-1 for none,
    None for a partition that is not a changelog: its end is kept); records
    at or below it are not looked for again, and an end that has nothing to
    read past it becomes ``persisted(tp) + 1``. Within ``wait_s`` or not at
    all: Faust's recovery takes a step that outlasts its request timeout for
    a stop and ends for good (``Recovery._wait``), so a broker that does not
    answer must not hold it here.
    """
    todo = {}
    for tp, end in ends.items():
        held = persisted(tp)
        if end is not None and held is not None and end - 1 > held:
            todo[tp] = (end, held)
    if not todo:
        return dict(ends)
    try:
        moved = await asyncio.wait_for(_read_tails(client_kwargs, todo, wait_s), wait_s)
    except Exception as exc:  # Faust's own end: slower, still correct
        log.warning("changelog tails not read (%s: %s)", type(exc).__name__, exc)
        return dict(ends)
    if moved:
        log.info(
            "recovery ends moved to the last committed record: %s",
            {tp: (ends[tp], end) for tp, end in moved.items()},
        )
    return {**ends, **moved}


async def _read_tails(
    client_kwargs: Mapping[str, Any], todo: Mapping[Any, tuple[int, int]], wait_s: float
) -> dict[Any, int]:
    """The moved end of each partition in ``todo`` (tp -> (end, held)) that moves."""
    deadline = time.monotonic() + wait_s
    # The broker answers a fetch at a partition's end at once rather than after 500 ms.
    consumer = AIOKafkaConsumer(
        isolation_level="read_committed", fetch_max_wait_ms=10, **client_kwargs
    )
    try:
        await consumer.start()
        left = dict(todo)
        moved: dict[Any, int] = {}
        tps = {tp: TopicPartition(tp.topic, tp.partition) for tp in left}
        consumer.assign(list(tps.values()))
        for window in (*TAIL_WINDOWS, None):  # None: everything past the local table
            spans = {}
            for tp, (end, held) in left.items():
                start = held + 1 if window is None else max(held + 1, end - window)
                spans[tps[tp]] = (start, end)
            found = await last_delivered(consumer, spans, deadline)
            for tp, (end, held) in list(left.items()):
                last = found[tps[tp]]
                if last is not None or spans[tps[tp]][0] == held + 1:
                    reachable = (held if last is None else last) + 1
                    if reachable != end:
                        moved[tp] = reachable
                    del left[tp]
            if not left:
                break
        return moved
    finally:
        await consumer.stop()


class ReachableEndsConsumer:
    """Mixin for the app's consumer class: recovery highwaters from :func:`reachable_ends`.

    Faust's ``Recovery._build_highwaters`` asks ``Consumer.highwaters`` for
    the ends of the partitions it recovers (actives and standbys) and waits
    for the record at each end - 1; this moves each end before Faust sees it.
    """

    changelog_client_kwargs: dict[str, Any] = {}

    async def highwaters(self, *partitions: Any) -> Mapping[Any, int]:
        ends = await super().highwaters(*partitions)  # type: ignore[misc]
        return await reachable_ends(self.changelog_client_kwargs, ends, self._table_persisted)  # type: ignore[return-value]

    def _table_persisted(self, tp: Any) -> int | None:
        """The last changelog offset in the local table (-1 if none; None: not a changelog)."""
        table = changelog_table(self.app, tp.topic)  # type: ignore[attr-defined]
        if table is None:
            return None
        offset = table.persisted_offset(tp)
        return -1 if offset is None else int(offset)


class PromptTableManager(TableManager):
    """Faust's table manager without the 1 s pause before it starts recovery.

    faust-streaming 0.15.3 (pinned) sleeps a second in ``TableManager.on_start``
    so that tables declared while the app starts are registered first. The
    rater declares its one table in ``build_app``, before the worker starts,
    so the pause only delayed every start, and a restart after a crash by a
    third of the target (decisions.md D46 ("Static group membership")).
    """

    async def on_start(self) -> None:
        if not self.should_stop:
            await open_table_channels(self)
            await self.recovery.start()
