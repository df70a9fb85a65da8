"""Is a Kafka broker answering? Checked with a real Metadata round trip, not a port scan."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable

from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest


def _split(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    return host or "127.0.0.1", int(port)


def port_open(bootstrap: str, timeout: float = 1.0) -> bool:
    """Cheap TCP check first, so waiting on a starting broker does not spam client errors."""
    try:
        with socket.create_connection(_split(bootstrap), timeout=timeout):
            return True
    except OSError:
        return False


async def metadata_brokers(bootstrap: str, timeout: float = 5.0) -> int:
    """Number of brokers the cluster reports; raises when the round trip fails."""
    host, port = _split(bootstrap)
    conn = await create_conn(host, port, request_timeout_ms=int(timeout * 1000))
    try:
        response = await asyncio.wait_for(conn.send(MetadataRequest([])), timeout)
    finally:
        conn.close()
    return len(response.brokers)


async def coordinators_ready(bootstrap: str, timeout: float = 5.0) -> bool:
    """Whether the group and transaction coordinators answer.

    A fresh broker creates ``__consumer_offsets`` and ``__transaction_state`` on
    first use; until then consumer groups and transactions fail with
    "coordinator not available". A broker is only ready once both answer.
    """
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await client.bootstrap()
    try:
        for kind in (CoordinationType.GROUP, CoordinationType.TRANSACTION):
            await asyncio.wait_for(client.coordinator_lookup(kind, "rater-readiness"), timeout)
        return True
    finally:
        await client.close()


def answers(bootstrap: str, timeout: float = 5.0, coordinators: bool = False) -> bool:
    """True when the broker serves metadata that lists at least one broker.

    With ``coordinators``, also wait for the group and transaction coordinators.
    """
    if not port_open(bootstrap, timeout=min(timeout, 1.0)):
        return False
    result: list[bool] = [False]

    async def check() -> bool:
        if await metadata_brokers(bootstrap, timeout) == 0:
            return False
        return not coordinators or await coordinators_ready(bootstrap, timeout)

    def run() -> None:  # own thread and loop: callers may already be inside an event loop
        try:
            result[0] = asyncio.run(check())
        except (TimeoutError, OSError, KafkaError):
            result[0] = False

    worker = threading.Thread(target=run, name="kafka-probe", daemon=True)
    worker.start()
    worker.join(timeout + 2.0)
    return result[0]


def wait_until_answers(
    bootstrap: str, timeout: float, alive: Callable[[], bool] | None = None, interval: float = 0.25
) -> bool:
    """Poll until the broker and its coordinators answer, the deadline passes or `alive()` fails."""
    deadline = time.monotonic() + timeout
    while True:
        budget = min(5.0, max(0.5, deadline - time.monotonic()))
        if answers(bootstrap, timeout=budget, coordinators=True):
            return True
        if alive is not None and not alive():
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)  # poll interval; the loop's exit is the condition above
