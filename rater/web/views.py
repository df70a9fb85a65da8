"""The worker's HTTP views, served by Faust's web server on ``RATER_WEB_PORT`` (SPEC 11).

``/health`` (liveness), ``/ready`` (readiness), ``/metrics`` (Prometheus),
``/openapi.json`` (this API's description), the balance and the four admin
writes. ``/rater/health/`` and ``/rater/stats/`` are kept: the first now
answers from the same readiness check as ``/ready`` (it said ok while a
table was still being restored), the second gives what the worker has
committed since it started (docs/decisions.md D35 ("Operator interfaces")).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from faust.web import View

from rater.core.clock import format_time
from rater.observability.metrics import RaterMetrics
from rater.observability.status import WorkerStatus
from rater.web.admin import EventProducer, write
from rater.web.balances import balance
from rater.web.http import json_response
from rater.web.openapi import openapi
from rater.web.routing import Router

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def health_of(app: Any, status: WorkerStatus) -> dict[str, Any]:
    """``/rater/health/``: "ok" exactly when ``/ready`` is 200, else the reason."""
    reason = status.readiness()
    return {
        "status": "ok" if reason is None else reason,
        "app_id": app.conf.id,
        "partitions": status.owned_partitions(),
    }


def stats_of(rater: Any, feed: Any) -> dict[str, Any]:
    counters = rater.counters
    last = counters.last_commit_us
    return {
        "inputs_committed": counters.inputs,
        "batches_committed": counters.batches,
        "outputs_committed": dict(sorted(counters.outputs.items())),
        "last_commit_at": None if last is None else format_time(last),
        "batches_failed": counters.failed_batches,
        "producers_renewed": counters.renewed_producers,
        "records_moved": rater.placement.moved,  # to their tenant's partition (SPEC 11)
        "tariff_rows": len(feed.index),
        "tariff_rows_rejected": len(feed.rejected),
    }


def add_views(
    app: Any,
    rater: Any,
    feed: Any,
    status: WorkerStatus,
    metrics: RaterMetrics,
    producer: EventProducer,
) -> Router:
    """Register every view; returns the router, whose session the app closes at stop."""
    router = Router(status)

    @app.page("/health")
    async def health(view: View, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    @app.page("/ready")
    async def ready(view: View, request: web.Request) -> web.Response:
        reason = status.readiness()
        body = {
            "status": "ready" if reason is None else "not ready",
            "reason": reason,
            "partitions": status.owned_partitions(),
        }
        return json_response(body, 200 if reason is None else 503)

    @app.page("/metrics")
    async def scrape(view: View, request: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = METRICS_CONTENT_TYPE
        return response

    @app.page("/openapi.json")
    async def description(view: View, request: web.Request) -> web.Response:
        return json_response(openapi())

    @app.page("/tenants/{tenant_id}/balance")
    class Balance(View):
        async def get(self, request: web.Request, tenant_id: str) -> web.Response:
            return await balance(request, tenant_id, status, router)

    @app.page("/tenants/{tenant_id}/purchases")
    class Purchases(View):
        async def post(self, request: web.Request, tenant_id: str) -> web.Response:
            return await write(request, "purchases", tenant_id, status, router, producer)

    for command in ("auto-recharge", "billing-model", "contact"):
        app.page(f"/tenants/{{tenant_id}}/{command}")(_put_view(command, status, router, producer))

    @app.page("/rater/health/")
    async def rater_health(view: View, request: web.Request) -> web.Response:
        body = health_of(app, status)
        failing = rater.not_ready_reason()  # a partition whose batches keep failing (main)
        if failing is not None and body["status"] == "ok":
            body = {**body, "status": "failing", "reason": failing}
        return json_response(body, 200 if body["status"] == "ok" else 503)

    @app.page("/rater/stats/")
    async def stats(view: View, request: web.Request) -> web.Response:
        return json_response(stats_of(rater, feed))

    return router


def _put_view(
    command: str, status: WorkerStatus, router: Router, producer: EventProducer
) -> type[View]:
    async def put(self: View, request: web.Request, tenant_id: str) -> web.Response:
        return await write(request, command, tenant_id, status, router, producer)

    name = "".join(part.title() for part in command.split("-"))
    return type(name, (View,), {"put": put, "__doc__": f"PUT {command} (SPEC 11)."})
