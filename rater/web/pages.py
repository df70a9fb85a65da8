"""The two pages people look at, served by every worker: ``/dashboard`` and ``/credits``.

The HTML, JS and CSS are plain files in ``rater/web/dashboard/``,
``rater/web/credits/`` and ``rater/web/static/``, served as they are: no build
step. They hold no data, so they are served without the API token; every
figure they show comes from a path behind the token (SPEC 11), which the
page sends as ``Authorization: Bearer`` once the user typed it
(docs/decisions.md D50 ("What people look at")). Every action of the credits page is a call
of the operator API (``/tenants/{id}/...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.web import View

from rater.core.topics import LEDGER
from rater.observability.metrics import RaterMetrics
from rater.observability.status import WorkerStatus
from rater.observability.tail import TopicTail
from rater.web.dashboard import Dashboard, tailed_topics
from rater.web.http import error, json_response, tenant_id_problem

HERE = Path(__file__).parent
# path -> (file, content type); these are the paths served without the token.
PAGE_FILES = {
    "/dashboard": (HERE / "dashboard" / "index.html", "text/html"),
    "/credits": (HERE / "credits" / "index.html", "text/html"),
    "/rater/pages/dashboard.js": (HERE / "dashboard" / "dashboard.js", "text/javascript"),
    "/rater/pages/credits.js": (HERE / "credits" / "credits.js", "text/javascript"),
    "/rater/pages/common.js": (HERE / "static" / "common.js", "text/javascript"),
    "/rater/pages/style.css": (HERE / "static" / "style.css", "text/css"),
}
RECENT_LEDGER = 20  # entries shown as "recent usage"
LEDGER_LOOKBACK = 2000  # latest records of the tenant's ledger partition searched for them


@dataclass(frozen=True)
class Kafka:
    """Where the pages read topics: the worker's cluster, prefix and client settings."""

    bootstrap_servers: str
    topic_prefix: str
    client_kwargs: dict[str, Any]


def add_pages(
    app: Any, app_id: str, kafka: Kafka, metrics: RaterMetrics, status: WorkerStatus
) -> TopicTail:
    """Register the pages and their data views; returns the dashboard's tail (stopped at exit)."""
    tail = TopicTail(
        kafka.bootstrap_servers, tailed_topics(kafka.topic_prefix), None, kafka.client_kwargs
    )
    dashboard = Dashboard(app_id, metrics, status, tail)

    for path, (file, content_type) in PAGE_FILES.items():
        app.page(path)(_file_view(file, content_type))

    @app.page("/rater/dashboard.json")
    async def figures(view: View, request: web.Request) -> web.Response:
        return json_response(dashboard.figures())

    @app.page("/rater/tenants/{tenant_id}/ledger")
    class RecentLedger(View):
        async def get(self, request: web.Request, tenant_id: str) -> web.Response:
            problem = tenant_id_problem(tenant_id)
            if problem is not None:
                return error(400, "invalid_tenant_id", problem)
            entries = await recent_ledger(kafka, status.partition_of(tenant_id), tenant_id)
            return json_response(
                {"tenant_id": tenant_id, "searched": LEDGER_LOOKBACK, "entries": entries}
            )

    return tail


def _file_view(file: Path, content_type: str) -> Any:
    async def get(view: View, request: web.Request) -> web.Response:
        # Read on each request: a few kB, and an edited page shows without a restart.
        return web.Response(
            body=file.read_bytes(),
            content_type=content_type,
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    return get


async def recent_ledger(kafka: Kafka, partition: int, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's latest ledger entries among the last records of its partition, newest first.

    The ledger is keyed by tenant and written to the tenant's partition, so
    one partition's tail holds them; a tenant quiet for long may have none
    there (the page says so). ``read_committed``, like any billing consumer.
    """
    tp = TopicPartition(kafka.topic_prefix + LEDGER, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        isolation_level="read_committed",
        enable_auto_commit=False,
        **kafka.client_kwargs,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        start = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, max(start, end - LEDGER_LOOKBACK))
        found: list[dict[str, Any]] = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, []):
                if record.key == tenant_id.encode() and record.value is not None:
                    found.append(orjson.loads(record.value))
        return list(reversed(found[-RECENT_LEDGER:]))
    finally:
        await consumer.stop()
