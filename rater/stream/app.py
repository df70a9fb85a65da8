"""The Faust application: topics, the tenant table and the batch path.

Faust provides group membership, co-partitioned assignment, recovery of the
tenant table from its changelog, and rebalance callbacks. The hot path is
the rater's own (:mod:`rater.stream.consumer`, :mod:`rater.stream.partition`):
the two agents below only keep the input topics subscribed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import faust
from faust.types import AppT

from rater.config import Settings
from rater.core.topics import OUTPUT_TOPICS
from rater.stream.consumer import BatchConsumer, RaterTransport
from rater.stream.heap_trim import TRIM_INTERVAL_S, heap_trimmer
from rater.stream.membership import watch_static_membership
from rater.stream.partition import PartitionRater, StepHook
from rater.stream.rebalance_seek import RevokedSeekGuard
from rater.stream.recovery_ends import PromptTableManager, ReachableEndsConsumer
from rater.stream.rocks_memory import share_one_budget
from rater.stream.store import RocksStates
from rater.stream.tariff_feed import TariffFeed
from rater.stream.transactions import PartitionTransactions
from rater.stream.worker_status import FaustWorkerStatus
from rater.web.admin import EventProducer
from rater.web.http import MAX_BODY, token_guard
from rater.web.pages import Kafka, add_pages
from rater.web.views import add_views

log = logging.getLogger(__name__)

TABLE = "tenants"


class RaterApp(faust.App):
    """A Faust app whose transport hands batches to the rater."""

    transport_class: type[RaterTransport] = RaterTransport

    def _new_transport(self) -> Any:
        return self.transport_class(self.conf.broker_consumer, self)


def build_app(
    settings: Settings, on_step: StepHook | None = None
) -> tuple[RaterApp, PartitionRater]:
    hot = frozenset({settings.topic("cdrs"), settings.topic("account-events")})
    client_kwargs = settings.security.client_kwargs()

    # ReachableEndsConsumer: recovery ends at the last committed changelog record, not
    # 10 s later (docs/decisions.md D47 ("Restart cost")).
    consumer_class: type[BatchConsumer] = type(
        "RaterConsumer",
        (ReachableEndsConsumer, RevokedSeekGuard, BatchConsumer),
        {
            "hot_topics": hot,
            "changelog_client_kwargs": {
                "bootstrap_servers": settings.bootstrap_servers,
                **client_kwargs,
            },
        },
    )
    transactions_class = type(
        "RaterTransactions",
        (PartitionTransactions,),
        {
            "hot_topics": hot,
            "client_kwargs": client_kwargs,
            "bootstrap_servers": settings.bootstrap_servers,
        },
    )
    transport_class = type(
        "RaterTransportForApp",
        (RaterTransport,),
        {"Consumer": consumer_class, "TransactionManager": transactions_class},
    )
    app_class = type("RaterAppForSettings", (RaterApp,), {"transport_class": transport_class})
    web_host = {"web_host": settings.web_host} if settings.web_host else {}
    app = app_class(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        broker_credentials=_credentials(settings),
        store="rocksdb://",
        processing_guarantee="exactly_once",
        topic_partitions=settings.partitions,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        **web_host,
        # Faust's own views are off: /table served raw state, and SPEC 11 says what is served.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_application_options={
            "client_max_size": MAX_BODY,
            "middlewares": [token_guard(settings.api_token)],
        },
        datadir=str(settings.data_dir),
        broker_max_poll_records=settings.max_poll_records,
        # Static membership (decisions.md D46 ("Static group membership")): a restarted worker
        # with the same id gets its partitions back without a rebalance.
        consumer_group_instance_id=settings.instance_id,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=1.0,
        stream_wait_empty=True,
        TableManager=PromptTableManager,
    )
    cdrs = app.topic(settings.topic("cdrs"), partitions=settings.partitions)
    events = app.topic(settings.topic("account-events"), partitions=settings.partitions)
    table = app.Table(
        TABLE,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        # Small write buffers: memtables flush early (benchmark-notes.md); the cache is shared.
        options={"driver": "rocksdict", "write_buffer_size": 2 << 20, "max_write_buffer_number": 2},
    )
    share_one_budget(table.data, settings.rocksdb_memory_mb << 20)
    changelog = table.changelog_topic.get_topic_name()
    transactions_class.written_topics = (  # type: ignore[attr-defined]
        changelog,
        *(settings.topic(name) for name in OUTPUT_TOPICS),
    )

    @app.agent(cdrs, name="cdrs-subscription")
    async def _cdrs(stream: Any) -> None:  # pragma: no cover - never reached
        async for _ in stream:
            raise RuntimeError("CDRs must take the batch path")

    @app.agent(events, name="account-events-subscription")
    async def _events(stream: Any) -> None:  # pragma: no cover - never reached
        async for _ in stream:
            raise RuntimeError("account events must take the batch path")

    feed = TariffFeed(settings.bootstrap_servers, settings.topic("tariffs"), client_kwargs)
    store = RocksStates(table.data)
    rater = PartitionRater(
        settings,
        feed,
        store,
        changelog,
        _LateTransactions(app),
        on_step=on_step,
    )
    ready = _start_once(feed)

    async def handle(partition: int, batch: dict[Any, list[Any]]) -> dict[Any, int]:
        await ready()
        return await rater.handle(partition, batch)

    consumer_class.handler = staticmethod(handle)

    @app.on_partitions_revoked.connect
    async def _forget(sender: AppT, revoked: Any, **_: Any) -> None:
        rater.forget()  # a partition may come back after another owner changed its state
        rater.metrics.forget()  # its blocked tenants too

    watch_static_membership(app, settings)

    if settings.expiry_sweep:

        @app.timer(settings.sweep_interval_s, name="expiry-sweep")
        async def _sweep() -> None:
            await sweep_owned_partitions(app, rater, ready)

    trim = heap_trimmer()
    if trim is not None:

        @app.timer(TRIM_INTERVAL_S, name="heap-trim")
        async def _trim_heap() -> None:
            await asyncio.to_thread(trim)

    status = FaustWorkerStatus(app, settings, store, TABLE, rater.failing_partitions)
    rater.metrics.attach(status)
    if settings.web_port:
        producer = EventProducer(
            settings.bootstrap_servers, settings.topic("account-events"), client_kwargs
        )
        router = add_views(app, rater, feed, status, rater.metrics, producer)
        kafka = Kafka(settings.bootstrap_servers, settings.topic_prefix, client_kwargs)
        dashboard_tail = add_pages(app, settings.app_id, kafka, rater.metrics, status)

        @app.on_before_shutdown.connect
        async def _close_api_clients(sender: AppT, **_: Any) -> None:
            await dashboard_tail.stop()
            await producer.stop()
            await router.close()

    app.rater = rater
    app.tariff_feed = feed
    return app, rater


async def sweep_owned_partitions(app: RaterApp, rater: PartitionRater, ready: Any) -> None:
    """The periodic expiry sweep (SPEC 6.1), routed through each owned partition.

    A Faust timer has no current event and runs on every worker, so it does
    not touch the table itself: under the batch lock it asks the rater to
    sweep each partition this worker holds a transactional producer for,
    exactly as if it were one more batch of that partition.
    """
    consumer = cast(BatchConsumer, app.consumer)
    if not consumer.flow_active:
        return  # a rebalance is under way; the next tick sweeps
    await ready()
    async with consumer.batch_lock():
        for partition in sorted(cast(PartitionTransactions, consumer.transactions).producers):
            try:
                count = await rater.sweep(partition)
            except Exception:  # the next tick tries again from committed state
                log.exception("expiry sweep of partition %d failed", partition)
                continue
            if count:
                log.info("expiry sweep of partition %d: %d outputs", partition, count)


class _LateTransactions:
    """The consumer's transaction manager, looked up when used: it exists once the app runs."""

    def __init__(self, app: RaterApp) -> None:
        self._app = app

    def _now(self) -> PartitionTransactions:
        return cast(PartitionTransactions, self._app.consumer.transactions)

    @property
    def producers(self) -> dict[int, Any]:
        return self._now().producers

    async def renew(self, partition: int) -> bool:
        return await self._now().renew(partition)

    async def drop(self, partition: int) -> None:
        await self._now().drop(partition)

    async def settle(self, partition: int, written: Any) -> None:
        await self._now().settle(partition, written)

    async def committed(self, partition: int, tp: Any, span: tuple[int, int]) -> bool | None:
        return await self._now().committed(partition, tp, span)


def _start_once(feed: TariffFeed) -> Any:
    lock = asyncio.Lock()
    started = False

    async def ready() -> None:
        nonlocal started
        if started:
            return
        async with lock:
            if not started:
                await feed.start()
                started = True

    return ready


def _credentials(settings: Settings) -> Any:
    security = settings.security
    if security.protocol == "PLAINTEXT":
        return None
    kwargs = security.client_kwargs()
    if security.protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password,
            mechanism=security.sasl_mechanism or "PLAIN",
            ssl_context=kwargs.get("ssl_context"),
        )
    return faust.SSLCredentials(kwargs["ssl_context"])
