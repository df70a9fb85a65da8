"""The four admin writes of SPEC 11: checked like the rater would, then produced.

A write is routed to the owner of the tenant's partition (it needs the
tenant's committed state to be checked), checked with the core's own
decoding and rules (:mod:`rater.core.admin`), and produced to
``account-events`` by an idempotent producer: ``202`` with the event as
written. The rater still decides when it applies the event. A caller that
gives ``event_id`` can retry safely: the rater ignores an id it has applied.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer

from rater.core.admin import build_event, check_event
from rater.core.errors import INVALID_FIELD, Rejected
from rater.observability.status import WorkerStatus
from rater.web.http import error, json_response, read_object, tenant_id_problem
from rater.web.routing import Router


class EventProducer:
    """One idempotent producer for the API's events, started on the first write."""

    def __init__(self, bootstrap_servers: str, topic: str, client_kwargs: dict[str, Any]) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.client_kwargs = client_kwargs
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap_servers,
                    enable_idempotence=True,  # a retried send is not written twice
                    acks="all",
                    **self.client_kwargs,
                )
                await producer.start()
                self._producer = producer

    async def send(self, key: bytes, value: bytes) -> None:
        await self.start()
        assert self._producer is not None
        await self._producer.send_and_wait(self.topic, value, key=key)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def wall_clock_us() -> int:
    return time.time_ns() // 1000


async def write(
    request: web.Request,
    command: str,
    tenant_id: str,
    status: WorkerStatus,
    router: Router,
    producer: EventProducer,
) -> web.Response:
    """One admin write: 400 bad JSON, 422 rejected (nothing produced), 202 produced."""
    raw, body = await read_object(request)
    if body is None:
        return error(400, "invalid_json", "the body must be one JSON object")
    problem = tenant_id_problem(tenant_id)
    if problem is not None:
        return error(422, INVALID_FIELD, problem)
    await producer.start()  # before the owner check: nothing may wait between it and the read

    async def local(partition: int) -> web.Response:
        state = status.committed_state(partition, tenant_id)
        now = wall_clock_us()
        event_id = body["event_id"] if "event_id" in body else f"api-{uuid.uuid4().hex}"
        event = build_event(command, tenant_id, body, event_id, now)
        try:
            check_event(event, state, now)
        except Rejected as rejected:
            return error(422, rejected.code, rejected.message)
        await producer.send(tenant_id.encode(), orjson.dumps(event))
        return json_response(event, 202)

    return await router.answer(request, tenant_id, local, raw)
