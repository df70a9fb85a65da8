"""``/health``, ``/ready`` and ``/metrics`` of the notifier on RATER_NOTIFY_WEB_PORT (SPEC 10, 11).

aiohttp, which faust-streaming already brings: the notifier runs no Faust app.
``/ready`` is 200 once the notifier has joined its group with the sent log
read and consumes; a stopped mail server does not make it unready (it only
grows the lag, SPEC 10), so an orchestrator does not restart it for nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from rater.notifier.metrics import CONTENT_TYPE_LATEST, NotifierMetrics


def build_app(state: Callable[[], str], metrics: NotifierMetrics) -> web.Application:
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(request: web.Request) -> web.Response:
        now = state()
        return web.json_response({"status": now}, status=200 if now == "consuming" else 503)

    async def metrics_view(request: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics_view)
    return app


async def start(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()  # probes come from outside
    return runner
