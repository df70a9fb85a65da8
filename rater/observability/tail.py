"""Reads output topics from their start and keeps reading: the feed of an :class:`OutputTally`.

``read_committed``, no consumer group (nothing is committed, every reader
starts at the beginning), so the figures are those a billing consumer sees:
an aborted batch never counts. Used by the worker's dashboard (started on
its first view, so a worker nobody looks at pays nothing) and by the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from rater.observability.tally import OutputTally

log = logging.getLogger(__name__)

POLL_MS = 500


class TopicTail:
    """One consumer over ``topics`` (real name -> SPEC name) feeding one tally."""

    def __init__(
        self,
        bootstrap: str,
        topics: Mapping[str, str],
        tally: OutputTally | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = dict(topics)
        self.tally = tally or OutputTally()
        self.client_kwargs = dict(client_kwargs or {})
        self.behind: int | None = None  # records not yet read; None before the first look
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    @property
    def caught_up(self) -> bool:
        return self.behind == 0

    def start(self) -> None:
        """Start reading in the background (idempotent)."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_caught_up(self, timeout: float) -> bool:
        """Wait until everything visible when called has been read (True), or ``timeout``."""
        self.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        target: int | None = None
        while loop.time() < deadline:
            if self.error is not None:
                return False
            if self.caught_up and target is not None:
                return True
            if self.behind is not None:
                target = 0  # a look was taken after this call: its 0 means caught up
            await asyncio.sleep(0.05)  # polls a flag the reader sets
        return False

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **self.client_kwargs,
        )
        try:
            await consumer.start()
            tps = await self._partitions()
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batch = await consumer.getmany(*tps, timeout_ms=POLL_MS)
                for tp, records in batch.items():
                    name = self.topics[tp.topic]
                    for record in records:
                        if record.value is None:
                            continue
                        try:
                            value = orjson.loads(record.value)
                            self.tally.add(name, value)
                        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                            log.warning("unreadable %s record at %s", name, record.offset)
                ends = await consumer.end_offsets(tps)
                behind = 0
                for tp in tps:
                    behind += max(0, ends[tp] - await consumer.position(tp))
                self.behind = behind
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # shown on the dashboard, not swallowed
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("reading %s failed", sorted(self.topics))
        finally:
            await consumer.stop()

    async def _partitions(self) -> list[TopicPartition]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.client_kwargs)
        await admin.start()
        try:
            described = await admin.describe_topics(list(self.topics))
        finally:
            await admin.close()
        tps: list[TopicPartition] = []
        for topic in described:
            if topic["error_code"] != 0 or not topic["partitions"]:
                raise LookupError(f"topic {topic['topic']} not found (error {topic['error_code']})")
            tps.extend(TopicPartition(topic["topic"], p["partition"]) for p in topic["partitions"])
        return sorted(tps)
