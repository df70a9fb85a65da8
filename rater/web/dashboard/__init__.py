"""The ops dashboard (rater/web/dashboard/): one plain page polling ``/rater/dashboard.json``.

Two sources, said apart on the page: what THIS worker measures (throughput,
lag of the partitions it owns, batch latency; from its Prometheus metrics,
SPEC 11) and what the output TOPICS hold for the whole group (DLQ by code
with examples, blocked tenants, top-up outcomes, overage, notifications;
read ``read_committed`` by a :class:`~rater.observability.tail.TopicTail`
started on the first view). No build step: the HTML and JS are served as
they are in this folder (docs/decisions.md D50 ("What people look at")).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from rater.core.clock import format_time
from rater.core.topics import NOTIFICATIONS, OVERAGE, RATER_DLQ, SERVICE_STATE, TOPUP_REQUESTS
from rater.observability.metrics import RaterMetrics
from rater.observability.status import WorkerStatus
from rater.observability.tail import TopicTail

# The low-volume outputs the page reads (rated-cdrs and ledger, one per CDR, are not read).
TAILED = (RATER_DLQ, TOPUP_REQUESTS, NOTIFICATIONS, SERVICE_STATE, OVERAGE)
WINDOW_S = 10.0  # throughput and batch latency are shown over about the last 10 seconds
QUANTILES = (0.5, 0.99)


def sample_total(metric: Any) -> float:
    """The ``_total`` sample of an unlabelled prometheus_client Counter."""
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                return float(sample.value)
    return 0.0


def labelled_totals(metric: Any, label: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                totals[sample.labels[label]] = float(sample.value)
    return totals


def histogram_state(metric: Any) -> tuple[list[tuple[float, float]], float, float]:
    """Cumulative ``(upper bound, count)`` buckets, count and sum of a Histogram."""
    buckets: list[tuple[float, float]] = []
    count = total = 0.0
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), float(sample.value)))
            elif sample.name.endswith("_count"):
                count = float(sample.value)
            elif sample.name.endswith("_sum"):
                total = float(sample.value)
    return sorted(buckets), count, total


def quantile_bound(buckets: Iterable[tuple[float, float]], count: float, q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (what a histogram can tell)."""
    if count <= 0:
        return None
    for bound, cumulative in buckets:
        if cumulative >= q * count:
            return bound
    return None


class Sampler:
    """Counter values over time, so the page shows rates over a window, not since start."""

    def __init__(self, metrics: RaterMetrics) -> None:
        self.metrics = metrics
        self.samples: deque[tuple[float, float, list[tuple[float, float]], float, float]] = deque()

    def take(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        rated = sample_total(self.metrics.cdrs_rated)
        buckets, count, total = histogram_state(self.metrics.batch_seconds)
        self.samples.append((now, rated, buckets, count, total))
        while len(self.samples) > 2 and now - self.samples[1][0] >= WINDOW_S:
            self.samples.popleft()
        then, rated0, buckets0, count0, total0 = self.samples[0]
        span = now - then
        window_buckets = [
            (bound, cumulative - dict(buckets0).get(bound, 0.0)) for bound, cumulative in buckets
        ]
        window_count = count - count0
        over = "window"
        if not window_count:  # no batch lately: show the whole run rather than nothing
            window_buckets, window_count, total0, over = buckets, count, 0.0, "since start"
        return {
            "cdrs_rated_total": int(rated),
            "cdrs_per_s": round((rated - rated0) / span, 1) if span > 0 else None,
            "window_s": round(span, 1),
            "batches": {
                "total": int(count),
                "over": over,
                "counted": int(window_count),
                "mean_ms": (
                    round((total - total0) / window_count * 1000, 1) if window_count else None
                ),
                **{
                    f"p{int(q * 100)}_ms_at_most": _ms(
                        quantile_bound(window_buckets, window_count, q)
                    )
                    for q in QUANTILES
                },
            },
        }


def _ms(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    return None if seconds == float("inf") else round(seconds * 1000, 1)


class Dashboard:
    """The figures of ``/rater/dashboard.json``."""

    def __init__(
        self,
        app_id: str,
        metrics: RaterMetrics,
        status: WorkerStatus,
        tail: TopicTail,
    ) -> None:
        self.app_id = app_id
        self.metrics = metrics
        self.status = status
        self.tail = tail
        self.sampler = Sampler(metrics)

    def figures(self) -> dict[str, Any]:
        self.tail.start()
        status = self.status
        lag = status.input_lag()
        return {
            "at": format_time(time.time_ns() // 1000),
            "worker": {
                "app_id": self.app_id,
                "ready": status.readiness() is None,
                "readiness": status.readiness(),
                "partitions": status.owned_partitions(),
                "inputs_total": {
                    topic: int(count)
                    for topic, count in labelled_totals(self.metrics.inputs, "topic").items()
                },
                "lag": [
                    {"topic": topic, "partition": partition, "records": records}
                    for (topic, partition), records in sorted(lag.items())
                ],
                "lag_total": sum(lag.values()),
                **self.sampler.take(),
            },
            "topics": {
                "caught_up": self.tail.caught_up,
                "behind": self.tail.behind,
                "error": self.tail.error,
                **self.tail.tally.snapshot(),
            },
        }


def tailed_topics(topic_prefix: str) -> dict[str, str]:
    return {topic_prefix + name: name for name in TAILED}
