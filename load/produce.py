"""`rater load`: produce generated traffic to the configured topics, paced or flat out.

Records go out through aiokafka's ``create_batch``/``send_batch``: one open
batch per topic partition, filled by the generator and shipped when full (or
at every pacing tick). That costs a few µs per record where ``send()`` costs
about ten, so one process can offer more than a single worker can rate.
Partitions are chosen here with Kafka's own key hash, cached per tenant key,
so ``cdrs`` and ``account-events`` stay co-partitioned exactly as the Java
client would place them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import click
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from load.traffic import Counts, Traffic, TrafficConfig
from rater.compat.aiokafka import refresh_metadata
from rater.config import Settings
from rater.core.clock import parse_time
from rater.core.topics import ACCOUNT_EVENTS, CDRS, TARIFFS
from rater.stream.batches import RecordBatches
from rater.stream.placement import partition_of

TICK_S = 0.005  # pacing granularity: a paced record waits at most this long in a batch
MAX_BATCH_BYTES = 512 * 1024


def new_producer(settings: Settings, **overrides: object) -> AIOKafkaProducer:
    """A producer for bulk input: big batches, a short linger, the settings' security."""
    kwargs: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": MAX_BATCH_BYTES,
        "max_request_size": 2 * MAX_BATCH_BYTES,
        **settings.security.client_kwargs(),
    }
    kwargs.update(overrides)
    return AIOKafkaProducer(**kwargs)


class BatchSender:
    """Generated records in one open batch per (topic, partition): the worker's
    :class:`RecordBatches`, placed by the worker's own key hash."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self._partitions: dict[str, int] = {}
        self._batches = RecordBatches(producer)
        self._pending: list[asyncio.Future[object]] = []
        self.sent = 0

    async def prepare(self, topics: Iterable[str]) -> None:
        """Fetch partition counts; every topic must exist."""
        for topic in topics:
            partitions = await self.producer.partitions_for(topic)
            if not partitions:
                raise click.ClickException(f"topic {topic} does not exist")
            self._partitions[topic] = len(partitions)

    def partition(self, topic: str, key: bytes) -> int:
        """Kafka's default partition for ``key`` (murmur2, as the Java client computes it)."""
        return partition_of(key, self._partitions[topic])

    async def add(
        self, topic: str, key: bytes | None, value: bytes | None, timestamp_ms: int | None = None
    ) -> None:
        if key is None:
            raise ValueError("every generated record has a key")
        self._batches.add_record(topic, self.partition(topic, key), key, value, timestamp_ms, [])
        self.sent += 1
        if self._batches.has_full:
            await self._ship(full_only=True)

    async def _ship(self, full_only: bool) -> None:
        for _, _, future in await self._batches.hand_over(full_only):
            self._pending.append(future)
        if len(self._pending) > 256:
            self._pending = [f for f in self._pending if not _settled(f)]

    async def ship_all(self) -> None:
        """Send every open batch now (a pacing tick, or the end)."""
        await self._ship(full_only=False)

    async def flush(self) -> None:
        """Send everything and wait until the broker has acknowledged it."""
        await self.ship_all()
        pending, self._pending = self._pending, []
        await asyncio.gather(*pending)


def _settled(future: asyncio.Future[object]) -> bool:
    """True for a delivered batch; a failed delivery raises here rather than at the end."""
    if not future.done():
        return False
    future.result()
    return True


async def partitions_of(
    consumer: AIOKafkaConsumer, topic: str, timeout: float = 30.0
) -> list[TopicPartition]:
    """The topic's partitions, waiting for metadata of a topic created a moment ago."""
    deadline = time.monotonic() + timeout
    while True:
        # A consumer without subscriptions keeps no metadata: ask for it (as TariffFeed does).
        cluster = await refresh_metadata(consumer)
        parts = cluster.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        if time.monotonic() > deadline:
            raise LookupError(f"topic {topic} not found")
        await asyncio.sleep(0.1)  # poll interval until the broker's metadata has the topic


async def wait_until_served(settings: Settings, topics: Iterable[str]) -> None:
    """Return once every partition of ``topics`` answers ListOffsets.

    Metadata names a new partition's leader a moment before it serves; producing
    then only logs NotLeaderForPartition retries, which look like failures.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, **settings.security.client_kwargs()
    )
    await consumer.start()
    try:
        tps = [tp for topic in topics for tp in await partitions_of(consumer, topic)]
        await consumer.end_offsets(tps)
    finally:
        await consumer.stop()


@dataclass
class Produced:
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


async def produce_setup(sender: BatchSender, settings: Settings, traffic: Traffic) -> Produced:
    """Tariff rows, then account events; acknowledged before any CDR is produced."""
    started = time.monotonic()
    count = 0
    for topic, key, value in traffic.setup_messages():
        await sender.add(settings.topic(topic), key, value)
        count += 1
    await sender.flush()
    return Produced(count, time.monotonic() - started)


async def produce_cdrs(
    sender: BatchSender,
    topic: str,
    records: Iterator[tuple[bytes, bytes, str]],
    total: int,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    stamps: list[int] | None = None,
) -> Produced:
    """Produce ``total`` records, at ``rate`` per second or (None) as fast as possible.

    With ``stamps`` given, the timestamp (epoch ms) of each record is
    appended to it, for latency measurements.
    """
    started = time.monotonic()
    done = 0
    while done < total:
        if rate is None:
            want = min(total - done, 5000)
        else:
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            want = due - done
            if want <= 0:  # pacing, not synchronisation: wait for the next due record
                wait = (done + 1) / rate - (time.monotonic() - started)
                await asyncio.sleep(max(wait, TICK_S))
                continue
        now_ms = int(time.time() * 1000)
        for _ in range(want):
            key, value, _kind = next(records)
            await sender.add(topic, key, value, now_ms)
        if stamps is not None:
            stamps.extend([now_ms] * want)
        done += want
        if rate is not None:
            await sender.ship_all()
        if progress is not None:
            progress(want)
    await sender.flush()
    return Produced(done, time.monotonic() - started)


def config_from_options(
    cdrs: int,
    tenants: int,
    tariff_rows: int,
    seed: int,
    dup_share: float,
    bad_share: float,
    zipf: float,
    span_hours: float,
    end: str | None,
) -> TrafficConfig:
    end_us = parse_time(end) if end else int(time.time() * 1_000_000) - 60_000_000
    if end_us is None:
        raise click.BadParameter(f"{end!r} is not an RFC 3339 time", param_hint="--end")
    try:
        return TrafficConfig(
            end_us=end_us,
            cdrs=cdrs,
            tenants=tenants,
            tariff_rows=tariff_rows,
            seed=seed,
            dup_share=dup_share,
            bad_share=bad_share,
            zipf_s=zipf,
            span_s=max(int(span_hours * 3600), 1),
            cdr_id_prefix=f"s{seed}",
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


async def run_load(
    settings: Settings, config: TrafficConfig, rate: float | None, setup: bool
) -> tuple[Produced | None, Produced, Counts]:
    traffic = Traffic(config)
    counts = Counts()
    await wait_until_served(settings, [settings.topic(t) for t in (TARIFFS, ACCOUNT_EVENTS, CDRS)])
    producer = new_producer(settings)
    await producer.start()
    try:
        sender = BatchSender(producer)
        await sender.prepare(settings.topic(t) for t in (TARIFFS, ACCOUNT_EVENTS, CDRS))
        set_up = await produce_setup(sender, settings, traffic) if setup else None
        stderr = click.get_text_stream("stderr")
        with click.progressbar(length=config.cdrs, label="CDRs", file=stderr) as bar:
            produced = await produce_cdrs(
                sender, settings.topic(CDRS), traffic.cdrs(counts), config.cdrs, rate, bar.update
            )
    finally:
        await producer.stop()
    return set_up, produced, counts


@click.command()
@click.option("--cdrs", default=100_000, show_default=True, help="CDR messages to produce.")
@click.option("--tenants", default=1_000, show_default=True)
@click.option("--tariffs", "tariff_rows", default=1_000, show_default=True, help="Tariff rows.")
@click.option("--rate", type=float, default=None, help="CDRs per second (default: --max).")
@click.option("--max", "flat_out", is_flag=True, help="As fast as the broker takes them.")
@click.option("--seed", default=1, show_default=True, help="Same seed, same traffic and ids.")
@click.option("--dup-share", default=0.01, show_default=True, help="Share of re-sent CDRs.")
@click.option("--bad-share", default=0.01, show_default=True, help="Share of bad records.")
@click.option("--zipf", default=1.0, show_default=True, help="Exponent of the tenant Zipf law.")
@click.option("--span-hours", default=6.0, show_default=True, help="Call start times span.")
@click.option("--end", default=None, help="Start time of the last CDR (default: a minute ago).")
@click.option(
    "--setup/--no-setup",
    default=True,
    show_default=True,
    help="Produce tariffs and accounts first.",
)
def load(
    cdrs: int,
    tenants: int,
    tariff_rows: int,
    rate: float | None,
    flat_out: bool,
    seed: int,
    dup_share: float,
    bad_share: float,
    zipf: float,
    span_hours: float,
    end: str | None,
    setup: bool,
) -> None:
    """Produce realistic generated traffic to the configured topics (see README)."""
    from rater.stream.cli import create_topics_or_fail, load_settings

    if rate is not None and flat_out:
        raise click.UsageError("give --rate or --max, not both")
    if rate is not None and rate <= 0:
        raise click.BadParameter("must be above 0", param_hint="--rate")
    settings = load_settings()
    create_topics_or_fail(settings)
    config = config_from_options(
        cdrs, tenants, tariff_rows, seed, dup_share, bad_share, zipf, span_hours, end
    )
    set_up, produced, counts = asyncio.run(run_load(settings, config, rate, setup))
    if set_up is not None:
        click.echo(f"set-up: {set_up.count:,} tariff rows and account events")
    kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(counts.by_kind.items()))
    click.echo(
        f"produced {produced.count:,} CDRs to {settings.topic(CDRS)} in {produced.seconds:.1f} s: "
        f"{produced.rate:,.0f} CDR/s ({kinds})"
    )
