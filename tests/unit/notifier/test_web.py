"""The notifier's probes and metrics page, served by aiohttp on a loopback port."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from rater.notifier.metrics import NotifierMetrics
from rater.notifier.web import build_app

SPEC_11 = (
    "rater_mails_sent_total",
    "rater_mails_failed_total",
    "rater_notifications_without_contact_total",
    "rater_consumer_lag_records",
    "rater_input_records_total",
)


async def test_ready_only_while_consuming_health_always() -> None:
    state = ["starting"]
    metrics = NotifierMetrics()
    async with TestClient(TestServer(build_app(lambda: state[0], metrics))) as client:
        assert (await client.get("/health")).status == 200
        response = await client.get("/ready")
        assert response.status == 503 and (await response.json()) == {"status": "starting"}
        state[0] = "consuming"
        assert (await client.get("/ready")).status == 200
        state[0] = "rebalancing"
        assert (await client.get("/ready")).status == 503


async def test_metrics_page_has_the_spec_series() -> None:
    metrics = NotifierMetrics()
    metrics.mails_sent.labels("balance_zero").inc()
    metrics.mails_failed.labels("refused").inc(2)
    metrics.without_contact.inc()
    metrics.lag.labels("notifications", "0").set(3)
    metrics.input_records.labels("notifications").inc(4)
    async with TestClient(TestServer(build_app(lambda: "consuming", metrics))) as client:
        response = await client.get("/metrics")
        body = await response.text()
    assert response.status == 200 and response.content_type == "text/plain"
    for name in SPEC_11:
        assert f"\n{name}" in body, name
    assert 'rater_mails_sent_total{type="balance_zero"} 1.0' in body
    assert 'rater_mails_failed_total{reason="refused"} 2.0' in body
