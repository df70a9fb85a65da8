"""Seen ids stored as records of their own give the same billing as ids kept in the state.

The stream shell keeps each tenant's seen ids in its table, one record per id,
writes them with the batch that applied them and deletes pruned ones. Here a
store in memory stands in for the table: the same messages, with duplicates,
commits and restarts at arbitrary points, must give exactly the outputs of the
core alone, and the store must end up holding exactly the ids still in the window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import orjson
from hypothesis import given
from hypothesis import strategies as st

from rater.core.codec import encode_state
from rater.core.processor import Processor
from rater.core.state import SeenIds, StoredSeenIds
from rater.core.tariffs import TariffIndex
from rater.devkit.scenario import TARIFFS, build
from rater.stream.rating import changed_records
from rater.stream.store import SEEN_IDS, StateCache, seen_prefix, tenant_of_seen_key

WALL = 2**62  # far beyond every message: nothing is rejected as from the future


class MemoryStates:
    """The table's CommittedStates contract over dicts, sorted like RocksDB on reads."""

    def __init__(self) -> None:
        self.values: dict[int, dict[bytes, bytes]] = defaultdict(dict)

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.values[partition].get(key)

    def write(self, partition: int, values: dict[bytes, bytes | None], offset: int) -> None:
        for key, value in values.items():
            if value is None:
                self.values[partition].pop(key, None)
            else:
                self.values[partition][key] = value

    def tenant_keys(self, partition: int) -> Iterator[bytes]:
        for key in sorted(self.values[partition]):
            if not key.startswith((SEEN_IDS, b"\x00")):
                yield key

    def scan(self, partition: int, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(self.values[partition]):
            if key.startswith(prefix):
                yield key, self.values[partition][key]


def tariffs() -> TariffIndex:
    index = TariffIndex()
    loader = Processor(index)
    for row in TARIFFS:
        loader.tariff(row["tariff_id"].encode(), orjson.dumps(row), "tariffs", 0, 0)
    return index


def run(messages: list[tuple[str, bytes, bytes]], processor: Processor) -> list:
    out = []
    for offset, (topic, key, value) in enumerate(messages):
        apply = processor.cdr if topic == "cdrs" else processor.account_event
        out.extend(apply(key, value, topic, 0, offset, WALL))
    return out


def with_duplicates(picks: list[tuple[int, int]]) -> list[tuple[str, bytes, bytes]]:
    """The scenario with earlier messages sent again at chosen places (index, which)."""
    messages = list(build(cdrs_per_tenant=24, seed=5).messages)
    for where, which in picks:
        at = where % (len(messages) + 1)
        messages.insert(at, messages[which % max(at, 1)])
    return messages


@given(
    picks=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), max_size=30),
    commits=st.sets(st.integers(0, 200), max_size=40),
    restarts=st.sets(st.integers(0, 200), max_size=6),
)
def test_stored_ids_bill_exactly_like_ids_in_the_state(
    picks: list[tuple[int, int]], commits: set[int], restarts: set[int]
) -> None:
    messages = with_duplicates(picks)
    index = tariffs()
    expected = run(messages, Processor(index))

    store = MemoryStates()
    processor = Processor(index, StateCache(store, 0))
    got = []
    for offset, message in enumerate(messages):
        got.extend(run_one(processor, message, offset))
        if offset in commits or offset in restarts:
            encoded, journals = changed_records(processor)
            store.write(0, encoded, offset)
            for journal in journals:
                journal.stored()
        if offset in restarts:  # a new owner: nothing but what was written
            processor = Processor(index, StateCache(store, 0))
    assert got == expected

    encoded, journals = changed_records(processor)
    store.write(0, encoded, len(messages))
    for journal in journals:
        journal.stored()
    for state in processor.states.values():
        assert isinstance(state.seen, StoredSeenIds)
        assert not state.seen.added and not state.seen.removed, "all written"
    alone = Processor(index)
    run(messages, alone)
    for tenant, state in alone.states.items():
        prefix = seen_prefix(tenant.encode())
        stored = {k[len(prefix):].decode(): int(v) for k, v in store.scan(0, prefix)}
        assert stored == dict(state.seen), tenant  # the window's ids, nothing pruned kept


def run_one(processor: Processor, message: tuple[str, bytes, bytes], offset: int) -> list:
    topic, key, value = message
    apply = processor.cdr if topic == "cdrs" else processor.account_event
    return apply(key, value, topic, 0, offset, WALL)


def test_ids_inline_in_an_older_state_move_to_their_own_records_on_its_next_change() -> None:
    index = tariffs()
    alone = Processor(index)
    messages = build(cdrs_per_tenant=4, seed=1).messages
    run(messages[:-1], alone)
    store = MemoryStates()
    for tenant, state in alone.states.items():  # states as the previous release wrote them
        assert isinstance(state.seen, SeenIds) and state.seen
        store.write(0, {tenant.encode(): encode_state(state)}, 0)
    inline = {tenant: dict(state.seen) for tenant, state in alone.states.items()}

    _, key, value = next(m for m in reversed(messages) if m[0] == "cdrs")
    fresh = ("cdrs", key, orjson.dumps(orjson.loads(value) | {"cdr_id": "not-seen-before"}))
    processor = Processor(index, StateCache(store, 0))
    assert run_one(processor, fresh, len(messages)) == run_one(alone, fresh, len(messages))
    encoded, _ = changed_records(processor)
    store.write(0, encoded, 1)
    changed = key.decode()
    prefix = seen_prefix(changed.encode())
    stored = {k[len(prefix):].decode(): int(v) for k, v in store.scan(0, prefix)}
    assert stored == dict(alone.states[changed].seen)
    assert set(inline[changed]) < set(stored)
    assert orjson.loads(store.get(0, changed.encode()))[-1] == {}  # no longer inline


def test_tenant_keys_of_different_lengths_never_share_a_prefix() -> None:
    assert not seen_prefix(b"ab").startswith(seen_prefix(b"a"))
    assert seen_prefix(b"a") + b"bc:1" != seen_prefix(b"ab") + b"c:1"
    assert tenant_of_seen_key(seen_prefix("tenant-ü".encode()) + b"c:x") == "tenant-ü".encode()
