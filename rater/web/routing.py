"""Answer for a tenant here, or ask the worker that owns its partition.

Faust's ``table_route`` forwards without the request body and trusts the
assignment it last saw; here the owner is taken from the same assignment
(``WorkerStatus.owner_url``) but the owner itself decides: it answers only
when it owns the partition and its state is restored, else 503 with the
reason. A forwarded request carries ``X-Rater-Forwarded`` and is never
forwarded again, so a stale assignment gives a 503, never a loop or a figure
from a worker that no longer owns the tenant (docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from rater.observability.status import WorkerStatus
from rater.web.http import unavailable

FORWARDED = "X-Rater-Forwarded"
FORWARD_TIMEOUT_S = 10.0
PASSED_HEADERS = ("Authorization", "Content-Type")

Local = Callable[[int], Awaitable[web.Response]]


class Router:
    """Forwards requests between the workers of one group, over one HTTP session."""

    def __init__(self, status: WorkerStatus) -> None:
        self.status = status
        self._session: aiohttp.ClientSession | None = None

    async def answer(
        self, request: web.Request, tenant_id: str, local: Local, body: bytes = b""
    ) -> web.Response:
        """``local(partition)`` if this worker serves the tenant's partition now, else the
        owner's answer, else 503.

        ``local`` must read what it needs before its first ``await``: the check
        that this worker serves the partition holds until then.
        """
        status = self.status
        partition = status.partition_of(tenant_id)
        reason = status.not_serving(partition)
        if reason is None:
            return await local(partition)
        if FORWARDED in request.headers:
            return unavailable(reason)  # the sender's view of the assignment is out of date
        owner = status.owner_url(partition)
        if owner is None or owner.rstrip("/") == status.own_url().rstrip("/"):
            return unavailable(reason)
        return await self._forward(request, owner, body)

    async def _forward(self, request: web.Request, owner: str, body: bytes) -> web.Response:
        headers = {
            name: request.headers[name] for name in PASSED_HEADERS if name in request.headers
        }
        headers[FORWARDED] = self.status.own_url()
        url = owner.rstrip("/") + request.raw_path  # as received: no re-encoding
        try:
            async with self.session().request(
                request.method, url, data=body or None, headers=headers
            ) as response:
                answer = await response.read()
                forwarded = web.Response(
                    body=answer, status=response.status, content_type=response.content_type
                )
                if "Retry-After" in response.headers:
                    forwarded.headers["Retry-After"] = response.headers["Retry-After"]
                return forwarded
        except (aiohttp.ClientError, TimeoutError) as exc:
            return unavailable(f"the owner at {owner} did not answer ({type(exc).__name__})")

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
