"""Which records a partition rates and which it moves to their tenant's partition (SPEC 11)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from rater.devkit.partitioners import PARTITIONERS, java_murmur2, librdkafka_crc32, sarama_fnv1a
from rater.stream.placement import Placement, partition_of

N = 4


@dataclass
class Rec:
    key: bytes | None
    offset: int


def batch_of(*keys: bytes | None, topic: str = "cdrs") -> dict:
    return {(topic, 0): [Rec(key, i) for i, key in enumerate(keys)]}


def home_key(partition: int) -> bytes:
    """A key whose tenant lives on ``partition``."""
    return next(
        key for i in range(10_000) if partition_of(key := b"t%d" % i, N) == partition
    )


def test_a_batch_already_at_home_is_returned_as_it_is() -> None:
    batch = batch_of(home_key(0), home_key(0), None)
    stay, moves = Placement(N).split(0, batch)
    assert stay is batch and moves == []


def test_misplaced_records_are_moved_in_offset_order_and_the_rest_stays() -> None:
    here, there = home_key(0), home_key(2)
    batch = batch_of(here, there, None, there, here)
    batch |= batch_of(there, here, topic="events")
    stay, moves = Placement(N).split(0, batch)
    assert {tp: [r.offset for r in records] for tp, records in stay.items()} == {
        ("cdrs", 0): [0, 2, 4],
        ("events", 0): [1],
    }
    assert [(tp[0], r.offset) for tp, r in moves] == [("cdrs", 1), ("cdrs", 3), ("events", 0)]


def test_a_batch_with_nothing_to_rate_here_moves_everything() -> None:
    there = home_key(3)
    stay, moves = Placement(N).split(0, batch_of(there, there))
    assert stay == {} and len(moves) == 2


@given(st.lists(st.one_of(st.none(), st.binary(max_size=8)), max_size=30), st.integers(0, N - 1))
def test_every_record_is_rated_here_or_moved_home_never_both(keys: list, partition: int) -> None:
    placement = Placement(N)
    stay, moves = placement.split(partition, batch_of(*keys))
    kept = [r.offset for records in stay.values() for r in records]
    moved = [r.offset for _, r in moves]
    assert sorted(kept + moved) == list(range(len(keys)))
    assert all(keys[o] is None or partition_of(keys[o], N) == partition for o in kept)
    assert all(placement.home(keys[o]) == partition_of(keys[o], N) != partition for o in moved)


def test_other_clients_partitioners_match_their_reference_values() -> None:
    # FNV-1a 32 of b"a" is 0xe40c292c (negative as int32); CRC-32 of b"a" is 0xe8b7be43
    assert sarama_fnv1a(b"a", 1_000_000) == abs(0xE40C292C - (1 << 32)) % 1_000_000
    assert librdkafka_crc32(b"a", 1_000_000) == 0xE8B7BE43 % 1_000_000
    assert java_murmur2(b"a", N) == partition_of(b"a", N)
    assert set(PARTITIONERS) == {"murmur2", "crc32", "fnv1a"}


def test_keys_longer_than_any_tenant_id_stay_and_are_not_remembered() -> None:
    """A hostile producer's unique 200 kB keys name no tenant: rejected where they are,
    without filling the worker's memory."""
    placement = Placement(N)
    key = b"k" * 200_000
    for partition in range(N):
        batch = batch_of(key)
        assert placement.split(partition, batch) == (batch, [])
    assert key not in placement._homes
    assert partition_of(b"t" * 257, N) == partition_of(b"t" * 257, N)
