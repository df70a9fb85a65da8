"""Holding back records until the other input topic has shown the same time."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from rater.stream.aligner import INFINITY, Aligner, CaughtUp

CDRS, EVENTS = ("cdrs", 0), ("events", 0)
TPS = [CDRS, EVENTS]


@dataclass
class Rec:
    timestamp: int
    offset: int


def recs(*stamps: int) -> list[Rec]:
    return [Rec(ts, i) for i, ts in enumerate(stamps)]


def stamps(released: dict, tp: tuple) -> list[int]:
    return [r.timestamp for r in released.get(tp, [])]


def nothing_caught_up(tp: tuple) -> float | None:
    return None


def caught_up_at(stamp: float, which: tuple = EVENTS) -> CaughtUp:
    """``which`` found caught up by the answer stamped ``stamp``; the other topic not."""
    return lambda tp: stamp if tp == which else None


def test_cdrs_newer_than_every_event_seen_wait_for_the_events() -> None:
    a = Aligner()
    a.add(CDRS, recs(10, 20, 30), now=0, arrived=0)
    a.add(EVENTS, recs(15), now=0, arrived=0)
    released = a.release(TPS, nothing_caught_up, now=0)
    assert stamps(released, CDRS) == [10]  # 20 and 30 may have an event before them
    assert stamps(released, EVENTS) == [15]
    assert a.held(CDRS) == 2


def test_a_topic_with_nothing_to_fetch_holds_nothing_back() -> None:
    a = Aligner()
    a.add(CDRS, recs(10, 20, 30), now=0, arrived=0)
    released = a.release(TPS, caught_up_at(INFINITY), now=0)
    assert stamps(released, CDRS) == [10, 20, 30]


def test_an_empty_topic_that_is_not_caught_up_holds_everything() -> None:
    a = Aligner()
    a.add(CDRS, recs(10, 20), now=0, arrived=0)
    assert a.release(TPS, nothing_caught_up, now=1) == {}
    assert a.held(CDRS) == 2


def test_records_are_held_however_long_the_other_topic_takes() -> None:
    """Releasing early would rate a CDR before an older account event: a billing error."""
    a = Aligner()
    a.add(CDRS, recs(10, 20), now=0, arrived=0)
    assert a.release(TPS, nothing_caught_up, now=3600) == {}
    assert a.holding_since() == 0
    a.add(EVENTS, recs(15), now=3600, arrived=0)
    released = a.release(TPS, nothing_caught_up, now=3600)
    assert stamps(released, CDRS) == [10]
    assert stamps(released, EVENTS) == [15]
    assert a.holding_since() == 3600  # the CDR at 20 waits from the last release on


def test_nothing_held_means_no_hold_time() -> None:
    a = Aligner()
    assert a.holding_since() is None
    a.add(CDRS, recs(10), now=5, arrived=0)
    a.release(TPS, lambda tp: INFINITY, now=6)
    assert a.holding_since() is None


def test_a_later_event_releases_the_cdrs_before_it_and_ties_go_together() -> None:
    a = Aligner()
    a.add(CDRS, recs(10, 20, 30), now=0, arrived=0)
    a.add(EVENTS, recs(5), now=0, arrived=0)
    assert stamps(a.release(TPS, nothing_caught_up, now=0), CDRS) == []
    a.add(EVENTS, [Rec(20, 1)], now=0.1, arrived=0)  # the next offset of the events partition
    released = a.release(TPS, nothing_caught_up, now=0.1)
    assert stamps(released, CDRS) == [10, 20]
    assert stamps(released, EVENTS) == [20]


def test_each_topic_keeps_its_own_order_even_when_a_time_goes_back() -> None:
    a = Aligner()
    a.add(CDRS, recs(10, 40, 20), now=0, arrived=0)
    a.add(EVENTS, recs(30), now=0, arrived=0)
    released = a.release(TPS, nothing_caught_up, now=0)
    assert stamps(released, CDRS) == [10]  # 20 waits behind 40: offsets stay in order


def test_clear_forgets_what_is_held() -> None:
    a = Aligner()
    a.add(CDRS, recs(10), now=0, arrived=0)
    a.clear()
    assert a.held(CDRS) == 0
    assert a.release(TPS, lambda tp: INFINITY, now=0) == {}


def test_records_delivered_again_are_held_once() -> None:
    a = Aligner()
    a.add(CDRS, recs(10, 20), now=0, arrived=0)
    a.add(CDRS, recs(10, 20, 30), now=0, arrived=0)  # the same offsets 0 and 1 again, then offset 2
    released = a.release(TPS, caught_up_at(INFINITY), now=0)
    assert [r.offset for r in released[CDRS]] == [0, 1, 2]


def test_first_offsets_say_where_to_fetch_again_what_is_dropped() -> None:
    a = Aligner()
    a.add(CDRS, [Rec(10, 5), Rec(20, 6)], now=0, arrived=0)
    a.add(EVENTS, [Rec(15, 2)], now=0, arrived=0)
    released = a.release(TPS, nothing_caught_up, now=0)
    assert stamps(released, CDRS) == [10] and stamps(released, EVENTS) == [15]
    assert a.first_offsets() == {CDRS: 6}  # offset 5 was handed out, 6 is still held
    a.clear()
    assert a.first_offsets() == {}


def test_a_caught_up_answer_covers_only_what_arrived_before_it() -> None:
    """A busy CDR partition brings records with every fetch; the older ones must not
    wait for a fetch that brings none (the p99 of session 8)."""
    a = Aligner()
    a.add(CDRS, recs(10, 20), now=0, arrived=5)
    a.add(CDRS, [Rec(30, 2)], now=0, arrived=7)
    released = a.release(TPS, caught_up_at(6), now=0)
    assert stamps(released, CDRS) == [10, 20]
    assert a.held(CDRS) == 1  # arrived with or after the answer: an event may still be appended


def test_an_answer_from_the_same_fetch_as_the_records_does_not_cover_them() -> None:
    a = Aligner()
    a.add(CDRS, recs(10, 20), now=0, arrived=5)
    assert a.release(TPS, caught_up_at(5), now=0) == {}
    assert stamps(a.release(TPS, caught_up_at(6), now=0), CDRS) == [10, 20]


def test_records_not_covered_still_go_up_to_the_other_topics_last_release() -> None:
    a = Aligner()
    a.add(EVENTS, recs(20), now=0, arrived=1)
    assert stamps(a.release(TPS, caught_up_at(INFINITY, CDRS), now=0), EVENTS) == [20]
    a.add(CDRS, recs(15, 25), now=0, arrived=9)
    released = a.release(TPS, caught_up_at(8), now=0)
    assert stamps(released, CDRS) == [15]  # no event can come before 20: one was released
    assert a.held(CDRS) == 1


# --- partitions whose timestamps go back in time (moved records, placement.py) ----------


def test_a_moved_record_older_than_one_before_it_is_not_passed_by_the_other_topic() -> None:
    """[100, 300, 150] and [50, 400]: 150 is held behind 300, so nothing above 150 on
    the other topic may go before it; all of cdrs can go with 50."""
    a = Aligner()
    a.add(CDRS, recs(100, 300, 150), now=0, arrived=0)
    a.add(EVENTS, recs(50, 400), now=0, arrived=0)
    released = a.release(TPS, nothing_caught_up, now=0)
    assert stamps(released, CDRS) == [100, 300, 150]
    assert stamps(released, EVENTS) == [50]


def test_an_event_waits_for_an_older_cdr_held_behind_a_newer_one() -> None:
    """The rule of in-order partitions would release event 200 before cdr 150."""
    a = Aligner()
    a.add(CDRS, recs(300, 150, 400), now=0, arrived=0)
    a.add(EVENTS, recs(200, 500), now=0, arrived=0)
    released = a.release(TPS, nothing_caught_up, now=0)
    assert 200 not in stamps(released, EVENTS) or 150 in stamps(released, CDRS)


def test_when_each_topic_waits_for_the_other_both_are_released_whole() -> None:
    a = Aligner()
    a.add(CDRS, recs(300, 150), now=0, arrived=0)
    a.add(EVENTS, recs(200), now=0, arrived=0)
    released = a.release(TPS, nothing_caught_up, now=0)
    assert (stamps(released, CDRS), stamps(released, EVENTS)) == ([300, 150], [200])
    assert a.held(CDRS) == a.held(EVENTS) == 0


def test_waiting_on_each_other_releases_only_what_both_topics_have_shown() -> None:
    a = Aligner()
    a.add(CDRS, recs(300, 150, 900), now=0, arrived=0)
    a.add(EVENTS, recs(200), now=0, arrived=0)
    released = a.release(TPS, nothing_caught_up, now=0)
    assert (stamps(released, CDRS), stamps(released, EVENTS)) == ([300, 150], [200])
    assert a.held(CDRS) == 1  # 900: an event up to 900 may still come


def test_a_disordered_partition_still_waits_for_an_empty_topic_that_is_not_caught_up() -> None:
    a = Aligner()
    a.add(CDRS, recs(300, 150), now=0, arrived=0)
    assert a.release(TPS, nothing_caught_up, now=0) == {}
    released = a.release(TPS, caught_up_at(INFINITY), now=0)
    assert stamps(released, CDRS) == [300, 150]


def test_once_the_old_record_is_released_the_partition_is_in_order_again() -> None:
    a = Aligner()
    a.add(CDRS, recs(100, 300, 150), now=0, arrived=0)
    a.add(EVENTS, recs(50, 400), now=0, arrived=0)
    a.release(TPS, nothing_caught_up, now=0)
    a.add(CDRS, [Rec(500, 3), Rec(600, 4)], now=1, arrived=1)
    released = a.release(TPS, nothing_caught_up, now=1)  # the usual rule: 400 <= 600
    assert (stamps(released, CDRS), stamps(released, EVENTS)) == ([], [400])


@dataclass
class TenantRec:
    timestamp: int
    offset: int
    tenant: int


@given(
    st.lists(st.tuples(st.sampled_from([CDRS, EVENTS]), st.integers(0, 3)), max_size=40),
    st.randoms(use_true_random=False),
)
def test_each_tenants_records_are_applied_in_time_order_however_partitions_interleave(
    plan: list, rng
) -> None:
    """Records are stamped in production order; each partition receives them in an
    order that keeps every tenant's own order (moved copies land late) but mixes
    tenants. Applied batch by batch, each batch in timestamp order as the rater
    does, every tenant's records come in time order and none is lost."""
    streams: dict = {CDRS: {}, EVENTS: {}}
    for stamp, (tp, tenant) in enumerate(plan):
        streams[tp].setdefault(tenant, []).append(stamp)
    a = Aligner()
    for tp, by_tenant in streams.items():
        queues = [list(q) for q in by_tenant.values()]
        records = []
        while any(queues):
            queue = rng.choice([q for q in queues if q])
            stamp = queue.pop(0)
            records.append(TenantRec(stamp, len(records), plan[stamp][1]))
        if records:
            a.add(tp, records, now=0, arrived=0)
    applied = []
    for caught_up in [nothing_caught_up] * 50 + [caught_up_at(INFINITY, tp) for tp in TPS] * 50:
        released = a.release(TPS, caught_up, now=0)
        batch = [(r.timestamp, tp != EVENTS, r) for tp in TPS for r in released.get(tp, [])]
        applied.extend(r for _, _, r in sorted(batch, key=lambda item: item[:2]))
    assert sorted(r.timestamp for r in applied) == list(range(len(plan)))
    for tenant in range(4):
        stamps_of = [r.timestamp for r in applied if r.tenant == tenant]
        assert stamps_of == sorted(stamps_of)
