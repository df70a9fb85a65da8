"""The figures behind the dashboard and the demo: the output tally, the sampler, the page files,
and the demo's tenant mix run through the pure core."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import orjson

from rater.core.processor import Processor
from rater.core.tariffs import TariffIndex
from rater.devkit.demo_tenants import TARIFFS, Calls, setup_events, tenants
from rater.observability.metrics import RaterMetrics
from rater.observability.tally import DLQ_MEANING, EXAMPLES_PER_CODE, OutputTally
from rater.web.dashboard import Sampler, quantile_bound
from rater.web.http import OPEN_PAGES
from rater.web.pages import PAGE_FILES


def _dlq(n: int, code: str) -> dict:
    return {
        "dlq_id": f"cdrs:0:{n}",
        "tenant_id": None,
        "source_topic": "cdrs",
        "key": "t",
        "value": "x" * 300,
        "error": {"code": code, "message": "m"},
    }


def test_tally_counts_what_the_topics_say() -> None:
    tally = OutputTally()
    for n in range(5):
        tally.add("rater-dlq", _dlq(n, "no_tariff"))
    tally.add("rater-dlq", _dlq(9, "invalid_json"))
    tally.add("topup-requests", {"tenant_id": "a", "currency": "EUR", "request_id": "a:topup:1"})
    tally.add("topup-requests", {"tenant_id": "b", "currency": "EUR", "request_id": "b:topup:1"})
    notice = {"tenant_id": "a", "at": "2026-01-01T00:00:00Z", "details": {}}
    tally.add(
        "notifications",
        {
            **notice,
            "notification_id": "1",
            "type": "auto_recharge_failed",
            "details": {"reason": "card declined"},
        },
    )
    tally.add("service-state", {"tenant_id": "a", "blocked": True, "balance": "-1.000000"})
    tally.add("service-state", {"tenant_id": "b", "blocked": True, "balance": "-2.000000"})
    tally.add("service-state", {"tenant_id": "b", "blocked": False, "balance": "3.000000"})
    tally.add("overage", {"tenant_id": "n", "currency": "EUR", "amount": "0.100000"})
    tally.add("overage", {"tenant_id": "n", "currency": "EUR", "amount": "0.200000"})
    for tenant, balance in (("a", "5.000000"), ("b", "-1.500000"), ("a", "-0.250000")):
        tally.add("ledger", {"tenant_id": tenant, "balance_after": balance})
    tally.add("rated-cdrs", {"tenant_id": "a", "currency": "EUR", "amount": "0.000000"})

    figures = tally.snapshot()
    assert [(d["code"], d["count"]) for d in figures["dlq"]] == [
        ("no_tariff", 5),
        ("invalid_json", 1),
    ]
    examples = figures["dlq"][0]["examples"]
    assert [x["dlq_id"] for x in examples] == ["cdrs:0:4", "cdrs:0:3", "cdrs:0:2"]  # newest first
    assert len(examples) == EXAMPLES_PER_CODE and len(examples[0]["value"]) < 300
    assert figures["dlq"][0]["meaning"] == DLQ_MEANING["no_tariff"]
    assert figures["topups"] == {
        "requested": 2,
        "succeeded": 0,
        "failed": 1,
        "pending": 1,
        "failure_reasons": {"card declined": 1},
    }
    assert figures["blocked"] == [{"tenant_id": "a", "balance": "-1.000000"}]
    assert figures["overage"] == {"records": 2, "amounts": {"EUR": "0.300000"}}
    assert tally.lowest_balances(1) == [("b", Decimal("-1.5"))]
    assert tally.lowest_balances(5) == [("b", Decimal("-1.5")), ("a", Decimal("-0.25"))]
    assert (tally.rated, tally.rated_zero) == (1, 1)


def test_quantile_bound_is_the_bucket_holding_the_quantile() -> None:
    buckets = [(0.01, 50.0), (0.1, 99.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile_bound(buckets, 100, 0.5) == 0.01
    assert quantile_bound(buckets, 100, 0.99) == 0.1
    assert quantile_bound(buckets, 100, 1.0) == 1.0
    assert quantile_bound(buckets, 0, 0.5) is None


def test_sampler_gives_rates_over_the_window_and_falls_back_to_the_run() -> None:
    metrics = RaterMetrics()
    sampler = Sampler(metrics)
    first = sampler.take(now=100.0)
    assert first["cdrs_per_s"] is None and first["batches"]["over"] == "since start"
    rated = [("rated-cdrs", b"t", {"tenant_id": "t", "amount": "0"})] * 50
    metrics.outputs_committed(0, rated)
    metrics.batch_seconds.observe(0.02)
    figures = sampler.take(now=105.0)
    assert figures["cdrs_per_s"] == 10.0 and figures["cdrs_rated_total"] == 50
    assert figures["batches"]["over"] == "window" and figures["batches"]["counted"] == 1
    assert figures["batches"]["p99_ms_at_most"] == 25.0  # the 0.025 s bucket
    later = sampler.take(now=130.0)  # nothing new for 25 s: the run's figures, not nothing
    assert later["cdrs_per_s"] == 0.0
    assert later["batches"]["over"] == "since start" and later["batches"]["counted"] == 1


def test_every_page_file_is_served_without_the_token_and_exists() -> None:
    assert set(PAGE_FILES) == OPEN_PAGES
    for file, _ in PAGE_FILES.values():
        assert file.is_file() and file.stat().st_size > 0
    assert "/rater/dashboard.json" not in OPEN_PAGES  # the data needs the token


def test_the_demo_mix_through_the_core_shows_what_the_demo_promises() -> None:
    now = 1_796_000_000_000_000
    processor = Processor(TariffIndex())
    for row in TARIFFS:
        processor.tariff(row["tariff_id"].encode(), orjson.dumps(row), "tariffs", 0, 0)
    mix = tenants()
    outputs: list[tuple[str, dict]] = []
    offset = 0

    def apply(topic: str, key: bytes, value: bytes, wall: int) -> list[tuple[str, dict]]:
        nonlocal offset
        offset += 1
        handler = processor.cdr if topic == "cdrs" else processor.account_event
        got = [(name, out) for name, _, out in handler(key, value, topic, 0, offset, wall)]
        outputs.extend(got)
        return got

    for event in setup_events(mix, now, expire_after_s=-85.0):
        got = apply("account-events", event["tenant_id"].encode(), orjson.dumps(event), now)
        assert all(name != "rater-dlq" for name, _ in got), (event, got)
    calls = Calls(mix)
    for n in range(2000):
        wall = now + n * 20_000  # 50 calls a second
        key, value = calls.next(wall)
        apply("cdrs", key, value, wall)

    assert 30 <= len(mix) <= 40
    codes = Counter(out["error"]["code"] for name, out in outputs if name == "rater-dlq")
    assert set(codes) == {"invalid_json", "no_tariff", "unknown_account"}
    kinds = Counter(
        (out["type"], out["tenant_id"]) for name, out in outputs if name == "notifications"
    )
    assert kinds[("credits_expiring", "expiring")] == 1
    assert kinds[("credits_expired", "expiring")] == 1
    assert {t for (kind, t) in kinds if kind == "nce_auto_recharge_enabled"} == {
        "nce-ar-01",
        "nce-ar-02",
        "nce-ar-03",
    }
    requested = {out["tenant_id"] for name, out in outputs if name == "topup-requests"}
    assert "card-fails" in requested and "prepaid-01" not in requested
    overage = {out["tenant_id"] for name, out in outputs if name == "overage"}
    assert overage and all(t.startswith("nce-") and not t.startswith("nce-ar") for t in overage)
    blocked = {
        out["tenant_id"] for name, out in outputs if name == "service-state" and out["blocked"]
    }
    assert any(t.startswith("prepaid-") for t in blocked)
    pooled = [out for name, out in outputs if name == "rated-cdrs" and out["pool_s"]]
    assert pooled and all(out["tenant_id"].startswith("pool-") for out in pooled)
