"""The worker's HTTP views, served by Faust's web server on ``RATER_WEB_PORT``.

``/rater/health/`` answers 200 while the worker owns partitions and is not
rebalancing, 503 otherwise, so an orchestrator can probe it. ``/rater/stats/``
gives what the worker has committed since it started. Billing results are
not served here: consumers read the output topics.
"""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View

from rater.core.clock import format_time
from rater.stream.partition import PartitionRater
from rater.stream.tariff_feed import TariffFeed


def health_of(app: Any) -> dict[str, Any]:
    """Ok once every assigned input partition has its transactional producer.

    The producers start one by one after an assignment (each fences the
    partition's previous owner), so a worker with fewer is still rebalancing.
    """
    consumer = app.consumer
    assigned = {tp.partition for tp in consumer.assignment() if tp.topic in consumer.hot_topics}
    partitions = sorted(assigned)
    if not consumer.flow_active or not assigned <= set(consumer.transactions.producers):
        status = "rebalancing"
    elif not partitions:
        status = "no partitions"
    else:
        status = "ok"
    return {"status": status, "app_id": app.conf.id, "partitions": partitions}


def stats_of(rater: PartitionRater, feed: TariffFeed) -> dict[str, Any]:
    counters = rater.counters
    last = counters.last_commit_us
    return {
        "inputs_committed": counters.inputs,
        "batches_committed": counters.batches,
        "outputs_committed": dict(sorted(counters.outputs.items())),
        "last_commit_at": None if last is None else format_time(last),
        "batches_failed": counters.failed_batches,
        "producers_renewed": counters.renewed_producers,
        "tariff_rows": len(feed.index),
        "tariff_rows_rejected": len(feed.rejected),
    }


def add_views(app: Any, rater: PartitionRater, feed: TariffFeed) -> None:
    @app.page("/rater/health/")
    async def health(view: View, request: Request) -> Response:
        body = health_of(app)
        failing = rater.not_ready_reason()
        if failing is not None and body["status"] == "ok":
            body = {**body, "status": "failing", "reason": failing}
        return view.json(body, status=200 if body["status"] == "ok" else 503)

    @app.page("/rater/stats/")
    async def stats(view: View, request: Request) -> Response:
        return view.json(stats_of(rater, feed))
