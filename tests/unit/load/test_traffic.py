"""The traffic generator: deterministic, realistic shares, and labels the core agrees with."""

from __future__ import annotations

import math
import tracemalloc
from collections import Counter

import orjson
import pytest

from load.traffic import (
    BAD_KINDS,
    COUNTRIES,
    DUPLICATE,
    GOOD,
    Counts,
    Traffic,
    TrafficConfig,
    zipf_weights,
)
from rater.core.clock import MINUTE, parse_time
from rater.core.messages import decode_account_event, decode_cdr
from rater.core.processor import Processor
from rater.core.tariffs import TariffIndex

END = parse_time("2026-03-01T12:00:00Z")
assert END is not None


def config(**fields: object) -> TrafficConfig:
    base = {"end_us": END, "cdrs": 20_000, "tenants": 200, "tariff_rows": 500, "seed": 7}
    return TrafficConfig(**(base | fields))  # type: ignore[arg-type]


def messages(cfg: TrafficConfig) -> list[tuple[bytes, bytes, str]]:
    return list(Traffic(cfg).cdrs())


def within(observed: int, total: int, share: float) -> bool:
    """Inside four standard deviations of a binomial count: flaky only by a bug."""
    sigma = math.sqrt(total * share * (1 - share))
    return abs(observed - total * share) <= 4 * sigma + 1


def test_same_config_same_bytes_and_another_seed_differs() -> None:
    cfg = config(dup_share=0.02, bad_share=0.02, cdrs=3_000)
    first, again = Traffic(cfg), Traffic(cfg)
    assert first.setup_messages() == again.setup_messages()
    assert list(first.cdrs()) == list(again.cdrs())
    assert list(first.cdrs()) == list(first.cdrs())  # a stream can be generated twice
    assert messages(config(seed=8, cdrs=3_000)) != messages(config(cdrs=3_000))


@pytest.mark.parametrize(("dup", "bad"), [(0.0, 0.0), (0.01, 0.01), (0.05, 0.1)])
def test_shares_of_duplicates_and_bad_records(dup: float, bad: float) -> None:
    cfg = config(dup_share=dup, bad_share=bad)
    kinds = Counter(kind for _, _, kind in messages(cfg))
    assert sum(kinds.values()) == cfg.cdrs
    assert within(kinds[DUPLICATE], cfg.cdrs, dup)
    assert within(sum(kinds[k] for k in BAD_KINDS), cfg.cdrs, bad)
    for kind in BAD_KINDS:  # the four kinds of bad record in equal parts
        assert within(kinds[kind], cfg.cdrs, bad / len(BAD_KINDS))


def test_duplicates_repeat_an_earlier_good_cdr_byte_for_byte() -> None:
    earlier: set[tuple[bytes, bytes]] = set()
    for key, value, kind in messages(config(dup_share=0.05)):
        if kind == DUPLICATE:
            assert (key, value) in earlier
        elif kind == GOOD:
            assert (key, value) not in earlier
            earlier.add((key, value))


def test_tenants_follow_a_zipf_law() -> None:
    cfg = config(cdrs=40_000, tenants=1_000, zipf_s=1.0)
    by_tenant = Counter(key for key, _, _ in messages(cfg))
    weights = zipf_weights(cfg.tenants, 1.0)
    for rank in (0, 1, 9):  # the busiest tenants get their Zipf share
        assert within(by_tenant[f"tenant-{rank:06d}".encode()], cfg.cdrs, weights[rank])
    top_tenth = sum(n for _, n in by_tenant.most_common(cfg.tenants // 10))
    assert top_tenth > 0.6 * cfg.cdrs  # a tenth of the tenants make most of the calls
    flat = Counter(key for key, _, _ in messages(config(cdrs=40_000, tenants=1_000, zipf_s=0)))
    assert max(flat.values()) < 3 * 40_000 / 1_000


def test_call_mix_durations_and_destinations_look_real() -> None:
    cfg = config(cdrs=10_000)
    cdrs = [decode_cdr(key, value) for key, value, _ in messages(cfg)]
    kinds = Counter(c.call_type for c in cdrs)
    assert set(kinds) == {"outbound", "conference_dialout", "conference_tollfree_dialin"}
    assert kinds["outbound"] > kinds["conference_dialout"]
    durations = sorted(c.duration_s for c in cdrs)
    assert 60 <= durations[len(durations) // 2] <= 150  # median about a minute and a half
    assert durations[-1] > 20 * durations[len(durations) // 2]  # a long log-normal tail
    assert 0.02 < durations.count(0) / len(durations) < 0.07  # unanswered calls
    heads = Counter(
        next(code for _, code, _ in COUNTRIES if c.destination_digits.startswith(code))
        for c in cdrs
    )
    assert len(heads) > 30  # destinations all over the world
    starts = [c.started_at for c in cdrs]
    assert starts == sorted(starts) and END - MINUTE <= starts[-1] <= END


def test_every_record_gets_from_the_core_what_its_label_says() -> None:
    """Good CDRs are rated, duplicates ignored, bad ones rejected with their code."""
    cfg = config(cdrs=6_000, dup_share=0.05, bad_share=0.1, nce_share=0.2, recharge_share=0.3)
    traffic = Traffic(cfg)
    proc = Processor(TariffIndex())
    now = END + MINUTE
    for offset, (key, value) in enumerate(traffic.tariff_messages()):
        assert proc.tariff(key, value, "tariffs", 0, offset) == []
    for offset, (key, value) in enumerate(traffic.account_messages()):
        decode_account_event(key, value)
        out = proc.account_event(key, value, "account-events", 0, offset, now)
        assert all(topic != "rater-dlq" for topic, _, _ in out), out
    counts = Counts()
    seen = Counter()
    for offset, (key, value, kind) in enumerate(traffic.cdrs(counts)):
        out = proc.cdr(key, value, "cdrs", 0, offset, now)
        if kind == GOOD:
            decode_cdr(key, value)
            assert out and out[0][0] == "rated-cdrs", out
        elif kind == DUPLICATE:
            assert out == []
        else:
            assert [topic for topic, _, _ in out] == ["rater-dlq"], (kind, value)
            assert out[0][2]["error"]["code"] == kind, (out, value)
        seen[kind] += 1
    assert counts.by_kind == dict(seen)
    assert sum(counts.per_tenant.values()) == counts.good == seen[GOOD]
    kinds = Counter(
        orjson.loads(v)["billing_model"]
        for k, v in traffic.account_messages()
        if b'"account_opened"' in v
    )
    assert kinds["nce"] and kinds["prepaid"]


def test_prepaid_tenants_have_credit_for_their_calls() -> None:
    """The purchases cover the traffic: the benchmark measures rating, not deficits."""
    cfg = config(cdrs=20_000, recharge_share=0.0, nce_share=0.0)
    traffic = Traffic(cfg)
    proc = Processor(TariffIndex())
    for offset, (key, value) in enumerate(traffic.tariff_messages()):
        proc.tariff(key, value, "tariffs", 0, offset)
    for offset, (key, value) in enumerate(traffic.account_messages()):
        proc.account_event(key, value, "account-events", 0, offset, END)
    for offset, (key, value, _) in enumerate(traffic.cdrs()):
        proc.cdr(key, value, "cdrs", 0, offset, END)
    assert all(state.balance() > 0 for state in proc.states.values())


@pytest.mark.parametrize("rows", [1, 500, 5_000])
def test_tariff_table_covers_every_country_with_the_rows_asked_for(rows: int) -> None:
    traffic = Traffic(config(tariff_rows=rows, cdrs=0))
    countries = {(row["call_type"], row["country"]) for row in traffic.rows}
    assert len(countries) == 3 * len(COUNTRIES)
    assert len(traffic.rows) >= rows and len(traffic.rows) <= max(rows + 1, 3 * len(COUNTRIES) + 1)
    assert len({row["tariff_id"] for row in traffic.rows}) == len(traffic.rows)


def test_cdrs_are_generated_as_they_are_taken_not_held() -> None:
    """A bench run draws millions of CDRs: the generator keeps a bounded window, not all.

    Memory, not seconds: a wall-clock bound fails on a loaded machine. 20,000
    CDR messages held would take about 8 MB (some 400 bytes each with their
    tuple); the generator keeps at most 1,024 for re-sends (2.6 MB peak measured).
    """
    cfg = config(cdrs=20_000, tenants=10_000, dup_share=0.01, bad_share=0.01)
    traffic = Traffic(cfg)
    tracemalloc.start()
    try:
        count = sum(1 for _ in traffic.cdrs())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == cfg.cdrs
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1024 / 1024:.1f} MiB while generating"


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError):
        config(dup_share=0.6, bad_share=0.6)
    with pytest.raises(ValueError):
        config(bad_share=-0.1)
    with pytest.raises(ValueError):
        config(tenants=0)
