"""``GET /tenants/{tenant_id}/balance`` (SPEC 11): committed state, from any worker.

The owner of the tenant's partition reads the tenant's last committed state
from its store and renders it with the core's :func:`balance_view`; any
other worker forwards the request to it (:mod:`rater.web.routing`).
"""

from __future__ import annotations

from aiohttp import web

from rater.core.balance import balance_view
from rater.observability.status import WorkerStatus
from rater.web.http import error, json_response, tenant_id_problem
from rater.web.routing import Router


async def balance(
    request: web.Request, tenant_id: str, status: WorkerStatus, router: Router
) -> web.Response:
    problem = tenant_id_problem(tenant_id)
    if problem is not None:
        return error(400, "invalid_tenant_id", problem)

    async def local(partition: int) -> web.Response:
        state = status.committed_state(partition, tenant_id)
        if state is None:
            return error(404, "unknown_account", f"no account {tenant_id!r}")
        return json_response(balance_view(state))

    return await router.answer(request, tenant_id, local)
