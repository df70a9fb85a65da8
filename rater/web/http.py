"""HTTP plumbing shared by the worker's views: token check, JSON answers, input checks.

Everything the API answers is JSON (except ``/metrics``); errors have one
shape, ``{"error": {"code": ..., "message": ...}}``, where ``code`` is the
SPEC 9 code for a write the rater would reject and a short word otherwise.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

log = logging.getLogger(__name__)

# SPEC 11: the probes and the scrape need no token; every other path does.
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
# The pages' HTML, JS and CSS hold no data; what they show comes from paths behind the
# token (rater/web/pages.py, docs/decisions.md D50 ("What people look at")).
OPEN_PAGES = frozenset(
    {
        "/dashboard",
        "/credits",
        "/rater/pages/dashboard.js",
        "/rater/pages/credits.js",
        "/rater/pages/common.js",
        "/rater/pages/style.css",
    }
)
MAX_BODY = 64 * 1024  # an admin body is a few hundred bytes; more is refused (413)
MAX_TENANT_ID = 64  # SPEC 4.1

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status)


def unavailable(reason: str) -> web.Response:
    """503 with the reason: the caller may retry (ownership moving, state restoring)."""
    response = error(503, "unavailable", reason)
    response.headers["Retry-After"] = "1"
    return response


def token_guard(token: str | None) -> Any:
    """aiohttp middleware: ``Authorization: Bearer <token>`` on every path but the open ones.

    The comparison takes the same time wherever the given token first differs
    (``hmac.compare_digest``). Without a token configured every path is open.
    Also turns an unexpected exception into a JSON 500 that is logged.
    """
    expected = token.encode() if token else None

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            expected is not None
            and request.path not in OPEN_PATHS
            and request.path not in OPEN_PAGES
        ):
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(errors="replace"), expected
            ):
                response = error(401, "unauthorized", "a valid bearer token is required")
                response.headers["WWW-Authenticate"] = 'Bearer realm="rater"'
                return response
        try:
            return await handler(request)
        except web.HTTPException as exc:  # aiohttp's own 404, 405, 413: JSON like the rest
            if exc.status < 400:
                raise
            response = error(exc.status, "http_error", exc.reason)
            if "Allow" in exc.headers:  # a 405 names the methods the path takes
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return error(500, "internal_error", "the worker failed on this request")

    return guard


def tenant_id_problem(tenant_id: str) -> str | None:
    """Why a tenant id from a path cannot be one, or None.

    SPEC 4.1 allows 1 to 64 characters; the API also refuses control and
    whitespace characters, which no tenant id of ours carries and which a
    forwarded URL or a log line would mangle (docs/decisions.md).
    """
    if not 1 <= len(tenant_id) <= MAX_TENANT_ID:
        return f"tenant_id: must be 1 to {MAX_TENANT_ID} characters"
    if not tenant_id.isprintable() or any(char.isspace() for char in tenant_id):
        return "tenant_id: must not contain control or whitespace characters"
    return None


async def read_object(request: web.Request) -> tuple[bytes, dict[str, Any] | None]:
    """The raw body and its JSON object, or None when it is not one (a 400)."""
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw, None
    return raw, body if isinstance(body, dict) else None
