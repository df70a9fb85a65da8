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

A partition's timestamps can go back in time: a record moved from another
partition (``placement.py``) keeps its producer's timestamp and lands after
newer ones. While a partition holds such records ("disordered"), the release
also keeps every released record at or below every record left held on the
other topic, and when that leaves nothing to release while both topics hold
records, it releases them together up to what both have shown: the rater
applies a batch in timestamp order, which keeps each tenant's records in
order (decisions D43 ("Any partitioner")). Partitions in order take the usual
path, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from operator import attrgetter, gt
from typing import Any

INFINITY = float("inf")
_TIMESTAMP = attrgetter("timestamp")

# Of a partition with an empty buffer: the stamp of the fetch answer that found
# it with nothing more to fetch (INFINITY: nothing can come), or None if it may
# still have records to give.
CaughtUp = Callable[[Hashable], float | None]


class Aligner:
    """Buffers of fetched, not yet applied records of one worker, by topic partition."""

    def __init__(self) -> None:
        self._held: dict[Hashable, list[Any]] = {}
        self._arrived: dict[Hashable, list[float]] = {}  # per held record: its arrival stamp
        self._released_ts: dict[Hashable, float] = {}
        self._held_since: dict[Hashable, float] = {}
        self._next_offset: dict[Hashable, int] = {}
        self._top: dict[Hashable, float] = {}  # newest timestamp held, per partition
        self._disordered: set[Hashable] = set()  # holding a record older than one before it

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
        self._top.clear()
        self._disordered.clear()

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
            top = self._top.get(tp, -INFINITY) if buffer else -INFINITY
            stamps = list(map(_TIMESTAMP, records))  # loops in C: this runs for every record
            if stamps[0] < top or any(map(gt, stamps, stamps[1:])):
                self._disordered.add(tp)
            self._top[tp] = max(top, max(stamps))
            buffer.extend(records)
            self._arrived.setdefault(tp, []).extend([arrived] * len(records))

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
        is not safe.
        """
        if self._disordered and not self._disordered.isdisjoint(tps):
            return self._release_disordered(tps, caught_up, now)
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

    def _release_disordered(
        self, tps: Sequence[Hashable], caught_up: CaughtUp, now: float
    ) -> dict[Hashable, list[Any]]:
        """:meth:`release` when a partition of ``tps`` holds timestamps out of order.

        A record is released only at or below the newest timestamp each other
        partition holds and every timestamp that partition keeps held, so no
        held record is older than one released before it; the rules for a
        partition holding nothing are those of :meth:`release`. That can
        leave nothing to release (``[300, 150]`` against ``[200]``: 200 waits
        for 150, which waits behind 300): then every partition of ``tps``
        holds records, and each releases up to its last record at or below
        the newest timestamp all of them have shown (200: 300 and 150, and
        200), together; the partition that showed the least always has one.
        """
        cut = INFINITY
        covered: list[tuple[float, float]] = []
        holding = []
        for tp in tps:
            if self._held.get(tp):
                holding.append(tp)
                continue
            released_ts = self._released_ts.get(tp, -INFINITY)
            answered = caught_up(tp)
            if answered is None:
                cut = min(cut, released_ts)
            else:
                covered.append((released_ts, answered))
        counts = {tp: len(self._held[tp]) for tp in holding}
        lowest = {}  # per holding partition: the lowest timestamp from each index on
        for tp in holding:
            suffix = [INFINITY] * (counts[tp] + 1)
            for i in range(counts[tp] - 1, -1, -1):
                suffix[i] = min(suffix[i + 1], self._held[tp][i].timestamp)
            lowest[tp] = suffix
        changed = True
        while changed:
            changed = False
            for tp in holding:
                limit = cut
                for other in holding:
                    if other != tp:
                        limit = min(limit, self._top[other], lowest[other][counts[other]])
                count = 0
                for record, arrived in zip(
                    self._held[tp][: counts[tp]], self._arrived[tp], strict=False
                ):
                    stamp = record.timestamp
                    if stamp > limit:
                        break
                    if covered and not all(stamp <= ts or arrived < at for ts, at in covered):
                        break
                    count += 1
                if count < counts[tp]:
                    counts[tp] = count
                    changed = True
        if len(holding) == len(tps) > 1 and not any(counts.values()):
            # Each waits on the other (see the docstring): release together what every
            # partition has shown up to, with whatever stands before it in its partition.
            bound = min(self._top[tp] for tp in holding)
            for tp in holding:
                stamps = [record.timestamp for record in self._held[tp]]
                counts[tp] = max((i + 1 for i, ts in enumerate(stamps) if ts <= bound), default=0)
        released: dict[Hashable, list[Any]] = {}
        for tp in holding:
            count = counts[tp]
            if not count:
                continue
            buffer = self._held[tp]
            released[tp] = buffer[:count]
            del buffer[:count]
            del self._arrived[tp][:count]
            self._released_ts[tp] = released[tp][-1].timestamp
            self._held_since[tp] = now
            self._disordered.discard(tp)
            top = -INFINITY
            for record in buffer:  # what stays held: its newest, and whether in order
                if record.timestamp < top:
                    self._disordered.add(tp)
                else:
                    top = record.timestamp
            self._top[tp] = top
        return released
