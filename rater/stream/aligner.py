"""Releasing a partition's CDRs and account events in time order across two topics.

Kafka orders each partition, not ``cdrs`` against ``account-events``: one
fetch may bring a tenant's CDRs without the ``account_opened`` produced
before them, which would reject them as ``unknown_account``. Like Kafka
Streams, the rater holds back records newer than what the other topic has
shown so far, unless the other topic's partition has nothing more to give
(caught up). Pure bookkeeping: the consumer tells it what is caught up.

There is no time limit: a record released before an older record of the
other topic is rated against the wrong state, which is a billing error,
while a hold only delays. The consumer keeps fetching the partitions that
hold nothing, so the record a hold waits for does arrive.

"Caught up" is judged per arrival: a partition with nothing to fetch as of
its fetch answer stamped A covers the other topic's records that arrived
before A, not those that arrived with or after it. Judging every held
record by the newest arrival kept a busy partition's CDRs waiting until a
fetch happened to bring none (docs/benchmark-notes.md, session 8).

Moved copies (``placement.py``, SPEC 11) break the premise of "shown": a
record's timestamp says when its producer wrote it, and a partition's
records come in that order, except a copy, appended when its original was
moved, after newer records. So "the other topic has shown a newer time"
proves nothing about the copies still to come, and a copy is released only
once the other topic's partition was found caught up after the copy arrived
(so the copies moved with it or before it have been taken), or has shown a
copy from the same source partition with a newer time (a source moves its
records in order). The records of a tenant written where it lives never
wait for copies: those are other tenants' (docs/decisions.md D43).
Partitions holding no copy take the usual path, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from operator import attrgetter
from typing import Any

from rater.stream.placement import MOVED_FROM

INFINITY = float("inf")
_TIMESTAMP = attrgetter("timestamp")
_HEADERS = attrgetter("headers")
UNREADABLE_SOURCE = -1  # a copy whose header names no partition: only "caught up" releases it

# Of a partition with an empty buffer: the stamp of the fetch answer that found
# it with nothing more to fetch (INFINITY: nothing can come), or None if it may
# still have records to give.
CaughtUp = Callable[[Hashable], float | None]


def moved_from(headers: Sequence[tuple[str, bytes]]) -> int | None:
    """The partition a moved copy was moved from (its ``rater-moved-from`` header), or None."""
    for key, value in headers:
        if key == MOVED_FROM:
            try:
                return int(value.rsplit(b":", 2)[1])
            except (ValueError, IndexError):
                return UNREADABLE_SOURCE
    return None


def lowest_from(stamps: list[float], counted: list[bool]) -> list[float]:
    """Per index i, and one past the end: the lowest of ``stamps[i:]`` that are counted."""
    lowest = [INFINITY] * (len(stamps) + 1)
    for i in range(len(stamps) - 1, -1, -1):
        lowest[i] = min(lowest[i + 1], stamps[i]) if counted[i] else lowest[i + 1]
    return lowest


class Aligner:
    """Buffers of fetched, not yet applied records of one worker, by topic partition."""

    def __init__(self) -> None:
        self._held: dict[Hashable, list[Any]] = {}
        self._arrived: dict[Hashable, list[float]] = {}  # per held record: its arrival stamp
        self._released_ts: dict[Hashable, float] = {}
        self._held_since: dict[Hashable, float] = {}
        self._next_offset: dict[Hashable, int] = {}
        # Only while a partition holds a moved copy: per held record, the partition it
        # was moved from, None for a record its producer wrote here.
        self._sources: dict[Hashable, list[int | None]] = {}
        # Per partition and source partition: the newest timestamp of a copy taken from it.
        self._copy_tops: dict[Hashable, dict[int, float]] = {}
        # Partitions a held copy waits to find caught up: the consumer keeps taking
        # their records, however many they hold (consumer.BatchConsumer._next_records).
        self.awaited: set[Hashable] = set()

    def first_offsets(self) -> dict[Hashable, int]:
        """The first held offset of each partition: where to fetch again after a :meth:`clear`."""
        return {tp: buffer[0].offset for tp, buffer in self._held.items() if buffer}

    def clear(self) -> None:
        """Forget everything held; the caller rewinds to :meth:`first_offsets` first."""
        self._held.clear()
        self._arrived.clear()
        self._released_ts.clear()
        self._held_since.clear()
        self._next_offset.clear()
        self._sources.clear()
        self._copy_tops.clear()
        self.awaited.clear()

    def held(self, tp: Hashable) -> int:
        return len(self._held.get(tp, ()))

    def add(self, tp: Hashable, records: list[Any], now: float, arrived: float) -> None:
        """Hold ``records``; ``arrived`` stamps the fetch answer that brought them
        (or any later one), on the clock the :data:`CaughtUp` stamps use."""
        # Faust's recovery resumes partitions before seeking them to the committed
        # offsets, so records already held or released can come again.
        next_offset = self._next_offset.get(tp)
        if next_offset is not None:
            records = [r for r in records if r.offset >= next_offset]
        if records:
            self._next_offset[tp] = records[-1].offset + 1
            buffer = self._held.setdefault(tp, [])
            if not buffer:
                self._held_since[tp] = now
            # loops in C: most producers send no headers, so this is all a fetch costs
            sources = self._copies_in(tp, records) if any(map(_HEADERS, records)) else None
            if sources is not None or tp in self._sources:
                held = self._sources.setdefault(tp, [None] * len(buffer))
                held.extend(sources or [None] * len(records))
            buffer.extend(records)
            self._arrived.setdefault(tp, []).extend([arrived] * len(records))

    def _copies_in(self, tp: Hashable, records: list[Any]) -> list[int | None] | None:
        """Per record, the partition it was moved from (None: none is a copy)."""
        sources = [moved_from(record.headers) for record in records]
        if sources.count(None) == len(sources):
            return None
        tops = self._copy_tops.setdefault(tp, {})
        for source, record in zip(sources, records, strict=True):
            if source is not None and record.timestamp > tops.get(source, -INFINITY):
                tops[source] = record.timestamp
        return sources

    def holding_since(self) -> float | None:
        """When the longest current hold began (monotonic seconds), or None: for warnings."""
        times = [self._held_since[tp] for tp, buffer in self._held.items() if buffer]
        return min(times, default=None)

    def release(
        self, tps: Sequence[Hashable], caught_up: CaughtUp, now: float
    ) -> dict[Hashable, list[Any]]:
        """The records of ``tps`` (one partition of each topic) safe to apply now.

        A record is safe against each partition of ``tps`` (its own included):
        its timestamp is at or below the newest one that partition holds, or,
        for a partition holding nothing, at or below the newest it released,
        unless it arrived before that partition was last found caught up.
        Each partition's records are released in order, up to the first that
        is not safe. A partition holding a moved copy takes
        :meth:`_release_with_copies`.
        """
        if self._sources and not self._sources.keys().isdisjoint(tps):
            return self._release_with_copies(tps, caught_up, now)
        if self.awaited:
            self.awaited.difference_update(tps)
        cut = INFINITY  # the timestamp bound of partitions holding records or not caught up
        covered: list[tuple[float, float]] = []  # caught up: (timestamp bound, answer stamp)
        for tp in tps:
            buffer = self._held.get(tp)
            if buffer:
                cut = min(cut, buffer[-1].timestamp)
                continue
            released_ts = self._released_ts.get(tp, -INFINITY)
            answered = caught_up(tp)
            if answered is None:
                cut = min(cut, released_ts)
            else:
                covered.append((released_ts, answered))
        released: dict[Hashable, list[Any]] = {}
        for tp in tps:
            buffer = self._held.get(tp)
            if not buffer:
                continue
            arrivals = self._arrived[tp]
            count = 0
            for record, arrived in zip(buffer, arrivals, strict=True):
                stamp = record.timestamp
                if stamp > cut:
                    break
                if covered and not all(stamp <= ts or arrived < at for ts, at in covered):
                    break
                count += 1
            if count:
                released[tp] = buffer[:count]
                del buffer[:count]
                del arrivals[:count]
                self._released_ts[tp] = released[tp][-1].timestamp
                self._held_since[tp] = now
        return released

    def _release_with_copies(
        self, tps: Sequence[Hashable], caught_up: CaughtUp, now: float
    ) -> dict[Hashable, list[Any]]:
        """:meth:`release` when a partition of ``tps`` holds a moved copy.

        A record is released only with proof, against each other partition
        Q of ``tps``, that Q's records it must follow have been taken:
        - Q was found caught up by a fetch answer after the record arrived;
        - or, for a record written here, Q has shown a timestamp at or above
          its own (held, or the last released): Q's records written here with
          older times were appended before that one;
        - or, for a copy, Q has shown a copy from the same source partition
          with a newer time: a source moves its records in offset order, one
          committed transaction after another, so the older copies of that
          tenant on Q were appended before it.
        And no record Q keeps held may be older than it, or as old (ties go
        together, account events first, as in any batch): for a record
        written here, among Q's records written here; for a copy, among all
        of Q's (the copy's tenant can have only copies here). Each partition
        releases its longest prefix that meets both, computed together.
        """
        answered = {tp: caught_up(tp) for tp in tps}
        self.awaited.difference_update(tps)
        holding = [tp for tp in tps if self._held.get(tp)]
        stamps = {tp: list(map(_TIMESTAMP, self._held[tp])) for tp in holding}
        kinds = {tp: self._sources.get(tp) or [None] * len(stamps[tp]) for tp in holding}
        shown = {}  # the newest timestamp each has shown: held, or the last released
        for tp in tps:
            last = self._released_ts.get(tp, -INFINITY)
            shown[tp] = max(max(stamps[tp]), last) if tp in stamps else last
        counts = {
            tp: self._proven(tp, tps, stamps[tp], kinds[tp], answered, shown) for tp in holding
        }
        if not any(counts.values()):
            return {}  # the usual state while a copy waits: no need to go on
        lowest_all = {tp: lowest_from(stamps[tp], [True] * len(stamps[tp])) for tp in holding}
        lowest_here = {
            tp: lowest_from(stamps[tp], [kind is None for kind in kinds[tp]]) for tp in holding
        }
        changed = True
        while changed:  # counts only shrink, so this ends
            changed = False
            for tp in holding:
                others = [other for other in holding if other != tp]
                count = 0
                for stamp, source in zip(stamps[tp][: counts[tp]], kinds[tp], strict=False):
                    lowest = lowest_here if source is None else lowest_all
                    if any(stamp >= lowest[other][counts[other]] for other in others):
                        break
                    count += 1
                if count < counts[tp]:
                    counts[tp] = count
                    changed = True
        released: dict[Hashable, list[Any]] = {}
        for tp in holding:
            count = counts[tp]
            if not count:
                continue
            buffer = self._held[tp]
            released[tp] = buffer[:count]
            del buffer[:count]
            del self._arrived[tp][:count]
            sources = self._sources.get(tp)
            if sources is not None:
                del sources[:count]
                if sources.count(None) == len(sources):
                    del self._sources[tp]  # no copy held: the usual path again
            self._released_ts[tp] = released[tp][-1].timestamp
            self._held_since[tp] = now
        return released

    def _proven(
        self,
        tp: Hashable,
        tps: Sequence[Hashable],
        stamps: list[float],
        kinds: list[int | None],
        answered: dict[Hashable, float | None],
        shown: dict[Hashable, float],
    ) -> int:
        """How many of ``tp``'s held records, from the first, have the proof of
        :meth:`_release_with_copies` against every other partition of ``tps``."""
        others = [other for other in tps if other != tp]
        for i, (stamp, source, arrived) in enumerate(
            zip(stamps, kinds, self._arrived[tp], strict=True)
        ):
            for other in others:
                at = answered[other]
                if at is not None and arrived < at:
                    continue
                if source is None:
                    if stamp <= shown[other]:
                        continue
                elif stamp < self._copy_tops.get(other, {}).get(source, -INFINITY):
                    continue
                if source is not None:
                    self.awaited.add(other)
                return i
        return len(stamps)
