"""Helpers for the operator API tests: workers with a web port, HTTP calls, metrics text."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rater.config import Settings
from rater.core.codec import decode_state, encode_state
from rater.core.state import TenantState
from rater.devkit.worker_process import WorkerProcess, free_port

T = TypeVar("T")
TOKEN = "s3cret-token-for-tests"


class ApiWorker(WorkerProcess):
    """A worker with its own data directory, web port and Kafka client id."""

    def __init__(self, settings: Settings, tmp_path: Path, name: str) -> None:
        self.name = name
        self.client_id = f"{settings.app_id}-{name}"
        super().__init__(
            dataclasses.replace(
                settings,
                data_dir=tmp_path / f"data-{name}",
                web_port=free_port(),
                web_host="127.0.0.1",
            ),
            tmp_path / f"worker-{name}.log",
            env={"BROKER_CLIENT_ID": self.client_id},
        )

    @property
    def port(self) -> int:
        return self.settings.web_port

    def tail(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.log_path.name} (last 3000 chars) ---\n{text[-3000:]}"


async def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """Status and body (JSON decoded when it is JSON) of one request; (0, None) if refused."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (None if body is None else orjson.dumps(body))
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.request(
                method, f"http://127.0.0.1:{port}{path}", data=data, headers=headers
            ) as response,
        ):
            text = await response.read()
            if response.content_type == "application/json":
                return response.status, orjson.loads(text)
            return response.status, text.decode()
    except aiohttp.ClientConnectionError:
        return 0, None


async def until(
    what: str,
    condition: Callable[[], Awaitable[T | None]],
    timeout: float,
    workers: Sequence[ApiWorker],
) -> T:
    """Poll ``condition`` until it returns something true; fail loudly at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = await condition()
        if result:
            return result
        for worker in workers:
            assert worker.alive(), f"{worker.name} died waiting for {what}\n{worker.tail()}"
        if time.monotonic() >= deadline:
            logs = "\n".join(w.tail() for w in workers)
            pytest.fail(f"no {what} after {timeout:.0f}s\n{logs}")
        await asyncio.sleep(0.2)  # poll interval; the loop exits on the condition above


async def ready(worker: ApiWorker) -> list[int] | None:
    """The worker's partitions once ``/ready`` says 200, else None."""
    status, body = await call(worker.port, "GET", "/ready")
    return body["partitions"] if status == 200 else None


async def settled(worker: ApiWorker) -> list[int] | None:
    """The worker's partitions when it is ready, [] when it has none after a rebalance
    (``/ready`` is 503 then, SPEC 11), None while it is rebalancing or restoring."""
    status, body = await call(worker.port, "GET", "/ready")
    if status == 200:
        return list(body["partitions"])
    if status == 503 and body["reason"] == "no partitions assigned":
        return []
    return None


def copy_state(state: TenantState) -> TenantState:
    """An independent copy of a core state (seen ids included), through the codec."""
    copy = decode_state(encode_state(state))
    copy.seen.update(state.seen)  # type: ignore[union-attr]
    return copy


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text: (name, sorted labels) -> value."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples
