"""`rater bench`: the rater against its ceiling and plain Faust, in one run on one machine.

Every run (``--runs``, default 3) uses fresh topics (8 partitions) and:

1. produces the set-up (tariffs, accounts) and lets one rater worker apply it,
   then stops the worker, so state exists before any CDR is timed;
2. produces the CDR backlog (default 500,000 CDRs over 10,000 tenants);
3. **ceiling**: a bare aiokafka loop consumes the backlog and produces one
   record per CDR (``getmany``, orjson decode, ``send``), no rating, no state;
4. **reference**: a plain Faust agent (one event, one send) in its own process
   over the first ``--faust-cdrs`` of the backlog (it is ~15 times slower, so the
   whole backlog would dominate the run; its rate is steady after a few s);
5. **rater**: ``rater worker`` starts again and drains the backlog; progress is
   read from the committed offsets of its consumer group, its resident size
   from ``/proc/<pid>/status`` while it drains;
6. **latency**: CDRs, generated beforehand, offered at half the rater's
   measured rate to the running worker; each is timed from its produce
   timestamp to the moment a ``read_committed`` consumer receives its
   ``rated-cdrs`` record (wall clock of this machine, so both ends use one
   clock). The consumer runs in a process of its own
   (:mod:`load.bench.latency_reader`), so reading never holds up the pacing.
   With ``--isolate-worker`` the worker runs alone on one core meanwhile
   (:mod:`load.bench.cpu_placement`);
7. **state**: the last ``<app_id>-tenants-changelog`` record of every tenant,
   after the set-up (idle tenants) and after the run.

All three throughputs are timed the same way: output records over the span
of their record timestamps, taken over the middle 90 % of them (5th to 95th
percentile), which leaves out process start-up, group joins, the first batch
(all its records carry the time it was rated) and a ragged end. The wall time
of the drain from the worker's start is reported beside it. Ratios are taken
within each run; the report gives each run and the median. The tariff index
is timed once, in process, at 1,000 and 100,000 rows.

Tenants are drawn by a Zipf law with s = 0.8 by default (``--zipf``): the
busiest of 10,000 tenants makes about 1 call in 27. Its seen ids are table
records of their own, so a busy tenant's state record stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import click
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from load import module_env
from load.bench import latency_reader
from load.bench.cpu_placement import Placement
from load.produce import (
    BatchSender,
    new_producer,
    partitions_of,
    produce_cdrs,
    produce_setup,
    wait_until_served,
)
from load.traffic import Counts, Traffic, TrafficConfig
from rater.config import Settings
from rater.core.messages import decode_cdr
from rater.core.processor import Processor
from rater.core.tariffs import TariffIndex
from rater.core.topics import ACCOUNT_EVENTS, CDRS, TARIFFS
from rater.devkit.localkafka.broker import Broker
from rater.devkit.localkafka.settings import KAFKA_VERSION, BrokerSettings
from rater.devkit.worker_process import WorkerProcess, free_port_pair
from rater.stream.store import SEEN_IDS, tenant_of_seen_key
from rater.stream.topics import TABLE_CHANGELOG, ensure_topics, topic_specs

PARTITIONS = 8
TARGET_RATE = 20_000
TARGET_VS_CEILING = 0.33
TARGET_VS_FAUST = 5.0
TARGET_P99_MS = 250.0
TARGET_IDLE_STATE = 2048
RSS_GROWTH_LIMIT = 0.10  # "not growing": less than 10 % between a quarter and all of the drain
START_MARK = "<!-- rater-bench:stream:start -->"
END_MARK = "<!-- rater-bench:stream:end -->"


@dataclass(frozen=True)
class Options:
    cdrs: int = 500_000
    tenants: int = 10_000
    runs: int = 3
    faust_cdrs: int = 60_000
    latency_s: float = 25.0
    latency_rate: float | None = None  # CDR/s offered in the latency phase; None: half the peak
    isolate_worker: bool = False  # the latency phase with the worker alone on a core
    tariff_rows: int = 1_000
    zipf: float = 0.8  # the busiest of 10,000 tenants makes about 1 call in 27
    dup_share: float = 0.0
    bad_share: float = 0.0
    seed: int = 1
    timeout_s: float = 1800.0  # for any one wait on the rater
    stall_s: float = 120.0  # no progress for this long fails the run

    @classmethod
    def quick(cls) -> Options:
        """A smoke version: small backlog, one run, short latency phase."""
        return cls(cdrs=20_000, tenants=500, runs=1, faust_cdrs=5_000, latency_s=5.0)


@dataclass
class Rate:
    """Records on an output topic, timed by their record timestamps.

    The rate is taken over the middle 90 % of the records (from the 5th to the
    95th percentile of their timestamps): a sustained rate, without the first
    batch (whose records all carry the time it was rated) or a ragged end.
    """

    timestamps: list[int] = field(default_factory=list)
    wall_s: float = 0.0  # from process or loop start to the last record seen

    def see(self, record: ConsumerRecord) -> None:
        self.timestamps.append(record.timestamp)

    @property
    def records(self) -> int:
        return len(self.timestamps)

    @property
    def span_s(self) -> float:
        return (max(self.timestamps) - min(self.timestamps)) / 1000 if self.timestamps else 0.0

    @property
    def per_s(self) -> float:
        n = len(self.timestamps)
        if n < 20:
            return 0.0
        ordered = sorted(self.timestamps)
        low, high = n * 5 // 100, n * 95 // 100
        return (high - low) / max((ordered[high] - ordered[low]) / 1000, 0.001)


@dataclass
class Latency:
    """Per offered CDR: milliseconds from its produce timestamp to its rated record."""

    offered_per_s: float = 0.0
    sent: int = 0
    indexes: list[int] = field(default_factory=list)  # which CDR, in the order seen
    consumed_ms: list[float] = field(default_factory=list)  # to this process receiving it
    stamped_ms: list[float] = field(default_factory=list)  # to the output record's timestamp

    @property
    def seen(self) -> int:
        return len(self.indexes)

    def quantile(self, which: str, q: float, last_quarter: bool = False) -> float:
        """A quantile; of the last quarter offered only, to tell a steady state from a queue."""
        values = getattr(self, which)
        if last_quarter:
            late = self.sent * 3 // 4
            values = [v for i, v in zip(self.indexes, values, strict=True) if i >= late]
        values = sorted(values)
        if not values:
            return float("nan")
        return values[min(int(q * len(values)), len(values) - 1)]


@dataclass
class RunResult:
    produce_rate: float = 0.0
    ceiling: Rate = field(default_factory=Rate)
    faust: Rate = field(default_factory=Rate)
    rater: Rate = field(default_factory=Rate)
    rater_expected: int = 0
    latency: Latency = field(default_factory=Latency)
    rss_setup_kib: int = 0
    rss_samples: list[tuple[float, int]] = field(default_factory=list)  # (share drained, KiB)
    rss_end_kib: int = 0
    idle_state: float = 0.0
    state_avg: float = 0.0
    state_max: int = 0
    changelog_per_cdr: float = 0.0  # bytes of tenant state written per rated CDR
    seconds: float = 0.0

    def rss_at(self, share: float) -> int:
        return level_at(self.rss_samples, share)


def level_at(samples: list[tuple[float, int]], share: float, width: float = 0.05) -> int:
    """A sampled size around ``share`` of a drain: the median of the samples
    within ``width`` of it (else the first past it, else the last).

    A batch's records and outputs come and go by tens of MiB, so a single
    sample says more about the batch it fell in than about the level.
    """
    near = [kib for drained, kib in samples if abs(drained - share) <= width]
    if near:
        return int(statistics.median(near))
    for drained, kib in samples:
        if drained >= share:
            return kib
    return samples[-1][1] if samples else 0


@dataclass
class IndexResult:
    rows: int
    build_s: float
    lookup_us: float
    misses: int


# ------------------------------------------------------------------------------ the broker


@contextlib.contextmanager
def bench_broker() -> Iterator[tuple[str, str, int | None]]:
    """(bootstrap, description, pid if ours): KAFKA_BOOTSTRAP_SERVERS, else our own
    broker in a temp dir."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external, f"external, {external}", None
        return
    data = Path(tempfile.mkdtemp(prefix="rater-bench-kafka-"))
    broker = Broker(BrokerSettings(port=free_port_pair(), data_dir=data, heap="1g"))
    click.echo(f"starting Kafka {KAFKA_VERSION} on {broker.bootstrap} in {data}", err=True)
    broker.start(timeout=180.0)
    try:
        description = f"Apache Kafka {KAFKA_VERSION}, single node, started by the bench"
        yield broker.bootstrap, description, broker.pid()
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)


# ---------------------------------------------------------------------- reading topics


def security_kwargs() -> dict[str, object]:
    return Settings.from_env().security.client_kwargs()


async def scan(
    bootstrap: str, topic: str, on_record: Callable[[ConsumerRecord], None], timeout: float = 300
) -> None:
    """Feed every committed record of ``topic`` (up to the end offsets now) to ``on_record``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **security_kwargs(),
    )
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: end offsets not reached in {timeout:.0f} s")
            for records in (await consumer.getmany(*tps, timeout_ms=200)).values():
                for record in records:
                    on_record(record)
    finally:
        await consumer.stop()


async def rate_of(bootstrap: str, topic: str) -> Rate:
    rate = Rate()
    await scan(bootstrap, topic, rate.see)
    return rate


@dataclass
class Changelog:
    """The tenant table's changelog: every record ever written, and what each tenant holds now.

    A tenant holds its state record and one record per seen id (key and value
    bytes both count); deleted ids (tombstones) no longer count.
    """

    records: int = 0
    bytes: int = 0
    held: dict[bytes, int] = field(default_factory=dict)  # key -> size of its last record

    def see(self, record: ConsumerRecord) -> None:
        key = record.key or b""
        size = len(key) + len(record.value or b"")
        self.records += 1
        self.bytes += size
        if key.startswith(b"\x00"):
            return  # the rater's own bookkeeping keys
        if record.value is None:
            self.held.pop(key, None)
        else:
            self.held[key] = size

    def per_tenant(self) -> dict[bytes, int]:
        sizes: dict[bytes, int] = defaultdict(int)
        for key, size in self.held.items():
            if key.startswith(SEEN_IDS):
                key = tenant_of_seen_key(key)
            sizes[key] += size
        return sizes

    @property
    def mean_state(self) -> float:
        sizes = self.per_tenant()
        return statistics.fmean(sizes.values()) if sizes else 0.0


async def changelog_of(ctx: RunContext) -> Changelog:
    changelog = Changelog()
    await scan(ctx.bootstrap, TABLE_CHANGELOG.format(app_id=ctx.settings.app_id), changelog.see)
    return changelog


class GroupProgress:
    """How far a consumer group has committed on one topic: cheap to poll, reads no data."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.group, self.topic = group, topic
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security_kwargs())
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **security_kwargs())
        self.end: dict[TopicPartition, int] = {}

    async def __aenter__(self) -> GroupProgress:
        await self.admin.start()
        await self.consumer.start()
        tps = await partitions_of(self.consumer, self.topic)
        self.end = await self.consumer.end_offsets(tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    @property
    def total(self) -> int:
        return sum(self.end.values())

    async def committed(self) -> int:
        offsets = await self.admin.list_consumer_group_offsets(self.group)
        return sum(
            min(meta.offset, self.end[tp])
            for tp, meta in offsets.items()
            if tp in self.end and meta.offset >= 0
        )


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -------------------------------------------------------------------------- one run


@dataclass
class RunContext:
    options: Options
    bootstrap: str
    settings: Settings
    work: Path
    index: int

    def topic(self, name: str) -> str:
        return self.settings.topic(name)


def run_context(options: Options, bootstrap: str, index: int, work: Path) -> RunContext:
    prefix = f"bench-{int(time.time())}-{index}-"
    base = Settings.from_env()
    settings = replace(
        base,
        bootstrap_servers=bootstrap,
        app_id=prefix + "rater",
        topic_prefix=prefix,
        partitions=PARTITIONS,
        data_dir=work / prefix,
        expiry_sweep=False,
        web_port=0,  # nothing else on the machine may hold a port the bench needs
    )
    return RunContext(options, bootstrap, settings, work, index)


def traffic_config(options: Options, end_us: int, **overrides: object) -> TrafficConfig:
    config = TrafficConfig(
        end_us=end_us,
        cdrs=options.cdrs,
        tenants=options.tenants,
        tariff_rows=options.tariff_rows,
        seed=options.seed,
        dup_share=options.dup_share,
        bad_share=options.bad_share,
        zipf_s=options.zipf,
        span_s=6 * 3600,
    )
    return replace(config, **overrides)


async def create_run_topics(ctx: RunContext) -> None:
    """The rater's topics and the two sinks, ready to serve before anything is produced."""
    await ensure_topics(ctx.settings)
    sinks = [ctx.topic(n) for n in ("bench-ceiling", "bench-faust")]
    admin = AIOKafkaAdminClient(bootstrap_servers=ctx.bootstrap, **security_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in sinks])
    finally:
        await admin.close()
    names = [spec.name for spec in topic_specs(ctx.settings)] + sinks
    await wait_until_served(ctx.settings, names)


async def delete_run_topics(ctx: RunContext) -> None:
    """Free the broker's disk between runs: every topic of the run's prefix goes."""
    admin = AIOKafkaAdminClient(bootstrap_servers=ctx.bootstrap, **security_kwargs())
    await admin.start()
    try:
        prefix = ctx.settings.topic_prefix
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def produce(ctx: RunContext, traffic: Traffic, setup: bool, counts: Counts) -> float:
    """Produce the set-up or the CDR backlog as fast as possible; returns records/s."""
    producer = new_producer(ctx.settings)
    await producer.start()
    try:
        sender = BatchSender(producer)
        await sender.prepare(ctx.topic(t) for t in (TARIFFS, ACCOUNT_EVENTS, CDRS))
        if setup:
            return (await produce_setup(sender, ctx.settings, traffic)).rate
        cfg = traffic.config
        done = await produce_cdrs(sender, ctx.topic(CDRS), traffic.cdrs(counts), cfg.cdrs)
        return done.rate
    finally:
        await producer.stop()


async def wait_drained(
    ctx: RunContext,
    topic: str,
    worker: WorkerProcess,
    sample: Callable[[float], None] | None = None,
) -> None:
    """Poll the rater group's committed offsets on ``topic`` until it has all of it.

    Fails when the worker dies, or commits nothing new for ``stall_s``: a
    partition whose batch fails is retried forever, and waiting out the whole
    timeout would only hide that.
    """
    deadline = time.monotonic() + ctx.options.timeout_s
    last, moved = -1, time.monotonic()
    async with GroupProgress(ctx.bootstrap, ctx.settings.app_id, topic) as progress:
        while True:
            done = await progress.committed()
            if sample is not None:
                sample(done / max(progress.total, 1))
            if done >= progress.total:
                return
            if done != last:
                last, moved = done, time.monotonic()
            problem = None
            if not worker.alive():
                problem = "the rater worker died"
            elif time.monotonic() - moved > ctx.options.stall_s:
                problem = f"the rater committed nothing for {ctx.options.stall_s:.0f} s"
            elif time.monotonic() > deadline:
                problem = f"the rater did not finish in {ctx.options.timeout_s:.0f} s"
            if problem:
                raise click.ClickException(
                    f"{problem}: {done:,} of {progress.total:,} {topic} records applied; "
                    f"last error in {worker.log_path}: {last_error(worker.log_path)}"
                )
            await asyncio.sleep(0.25)  # poll interval of the condition above


def last_error(log_path: Path) -> str:
    """The last exception line of a worker log, so a failed run says why in one line."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    return errors[-1].strip()[:300] if errors else "(none logged)"


async def apply_setup(ctx: RunContext, traffic: Traffic, result: RunResult) -> WorkerProcess:
    """Set-up messages applied by a worker that is then stopped: state exists, no CDR yet."""
    await produce(ctx, traffic, setup=True, counts=Counts())
    worker = WorkerProcess(ctx.settings, ctx.work / f"{ctx.settings.app_id}.log")
    worker.start()
    try:
        await wait_drained(ctx, ctx.topic(ACCOUNT_EVENTS), worker)
        assert worker.proc is not None
        result.rss_setup_kib = rss_kib(worker.proc.pid)
    finally:
        worker.stop()
    result.idle_state = (await changelog_of(ctx)).mean_state
    return worker


async def ceiling(ctx: RunContext, total: int) -> Rate:
    """The bare loop: getmany, orjson decode, send one record per CDR. No group, no state."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=ctx.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **security_kwargs(),
    )
    producer = new_producer(ctx.settings, acks=1)
    await consumer.start()
    await producer.start()
    sink = ctx.topic("bench-ceiling")
    started = time.monotonic()
    try:
        tps = await partitions_of(consumer, ctx.topic(CDRS))
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        done = 0
        loads, dumps, send = orjson.loads, orjson.dumps, producer.send
        while done < total:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                for record in records:
                    try:
                        cdr = loads(record.value)
                        value = dumps({"cdr_id": cdr["cdr_id"], "tenant_id": cdr["tenant_id"]})
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        value = b"{}"
                    await send(sink, value, key=record.key)
                    done += 1
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
    wall = time.monotonic() - started
    rate = await rate_of(ctx.bootstrap, sink)
    rate.wall_s = wall
    return rate


async def plain_faust(ctx: RunContext, total: int) -> Rate:
    """The reference agent in its own process, stopped once ``total`` records are out."""
    sink = ctx.topic("bench-faust")
    log_path = ctx.work / f"{ctx.settings.topic_prefix}faust.log"
    cmd = [
        sys.executable,
        "-m",
        "load.bench.faust_agent",
        ctx.bootstrap,
        ctx.settings.topic_prefix + "faust-ref",
        ctx.topic(CDRS),
        sink,
        str(PARTITIONS),
        str(ctx.work / f"{ctx.settings.topic_prefix}faust-data"),
    ]
    started = time.monotonic()
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=module_env()
        )
    try:
        await wait_for_records(ctx, sink, total, lambda: proc.poll() is None, log_path)
    finally:
        stop_process(proc)
    wall = time.monotonic() - started
    rate = await rate_of(ctx.bootstrap, sink)
    rate.wall_s = wall
    return rate


async def wait_for_records(
    ctx: RunContext, topic: str, want: int, alive: Callable[[], bool], log_path: Path
) -> None:
    """Poll a non-transactional topic's end offsets until it holds ``want`` records."""
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap, **security_kwargs())
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        deadline = time.monotonic() + ctx.options.timeout_s
        while sum((await consumer.end_offsets(tps)).values()) < want:
            if not alive():
                raise click.ClickException(f"the process writing {topic} died; see {log_path}")
            if time.monotonic() > deadline:
                raise click.ClickException(f"{topic}: fewer than {want:,} records in time")
            await asyncio.sleep(0.25)  # poll interval of the condition above
    finally:
        await consumer.stop()


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM to the process group, SIGKILL if it does not stop in time."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


async def drain(ctx: RunContext, worker: WorkerProcess, result: RunResult) -> None:
    """Start the rater on the backlog; sample its RSS; time its output."""
    samples: list[tuple[float, int]] = []

    def sample(share: float) -> None:
        if worker.proc is not None and worker.alive():
            samples.append((share, rss_kib(worker.proc.pid)))

    started = time.monotonic()
    worker.start()
    await wait_drained(ctx, ctx.topic(CDRS), worker, sample)
    wall = time.monotonic() - started
    result.rss_samples = samples
    result.rater = await rate_of(ctx.bootstrap, ctx.topic("rated-cdrs"))
    result.rater.wall_s = wall


async def latency(
    ctx: RunContext,
    worker: WorkerProcess,
    end_us: int,
    offered: float,
    placement: Placement | None = None,
) -> Latency:
    """Offer CDRs at ``offered``/s to the running worker; time each to its rated record.

    With a ``placement``, the worker has a core of its own while the CDRs are
    offered (:mod:`load.bench.cpu_placement`).
    """
    seconds = ctx.options.latency_s
    count = max(int(offered * seconds), 1)
    config = traffic_config(
        ctx.options,
        end_us,
        cdrs=count,
        dup_share=0.0,
        bad_share=0.0,
        cdr_id_prefix=f"lat{ctx.index}",
        seed=ctx.options.seed + 1000,
    )
    result = Latency(offered_per_s=offered, sent=count)
    # Made before the clock starts: on this one machine, generating CDRs while
    # offering them took CPU from the worker that real producers elsewhere would not.
    cdrs = list(itertools.islice(Traffic(config).cdrs(), count))
    stamps: list[int] = []
    assert worker.proc is not None
    placed = placement.applied(worker.proc.pid) if placement else contextlib.nullcontext()
    with placed:  # the reader, started inside, inherits this process's CPUs
        seen = await offer_and_read(ctx, worker, config.cdr_id_prefix, cdrs, offered, stamps)
    for index, read_ms, record_ms in zip(seen.indexes, seen.read_ms, seen.record_ms, strict=True):
        result.indexes.append(index)
        result.consumed_ms.append(read_ms - stamps[index])
        result.stamped_ms.append(record_ms - stamps[index])
    return result


async def offer_and_read(
    ctx: RunContext,
    worker: WorkerProcess,
    prefix: str,
    cdrs: list[tuple[bytes, bytes, str]],
    offered: float,
    stamps: list[int],
) -> latency_reader.Seen:
    """Produce ``cdrs`` at ``offered``/s (their stamps into ``stamps``); what the reader saw."""
    count = len(cdrs)
    reader = await latency_reader.start(ctx.bootstrap, ctx.topic("rated-cdrs"), prefix, count)
    try:
        producer = new_producer(ctx.settings, linger_ms=0)
        await producer.start()
        try:
            sender = BatchSender(producer)
            await sender.prepare([ctx.topic(CDRS)])
            await produce_cdrs(sender, ctx.topic(CDRS), iter(cdrs), count, offered, None, stamps)
        finally:
            await producer.stop()
        return await wait_reader(reader, worker, 60.0)
    finally:
        if reader.returncode is None:
            reader.kill()
            await reader.wait()


READER_STOP_S = 10.0  # longest a stopped latency reader may take to report


async def wait_reader(
    reader: asyncio.subprocess.Process, worker: WorkerProcess, timeout: float
) -> latency_reader.Seen:
    """Wait for the reader's results; fail at once if the worker has died meanwhile.

    Past ``timeout`` the reader is stopped and reports what it has seen, so the
    report shows how many offered CDRs were rated in time (rated / offered).
    """
    assert reader.stdout is not None
    result = asyncio.ensure_future(reader.stdout.read())  # to the end: the reader then exits
    deadline = time.monotonic() + timeout
    try:
        while not result.done() and time.monotonic() < deadline:
            if not worker.alive():
                raise click.ClickException(
                    "the rater worker died during the latency phase; last error in "
                    f"{worker.log_path}: {last_error(worker.log_path)}"
                )
            await asyncio.wait({result}, timeout=0.5)
        if not result.done():
            reader.terminate()  # it stops reading and prints what it has seen
            await asyncio.wait({result}, timeout=READER_STOP_S)
        output = result.result() if result.done() else b""
        if not output:
            raise click.ClickException(f"the latency reader gave no results ({reader.returncode})")
        return latency_reader.Seen(**orjson.loads(output))
    finally:
        result.cancel()


async def one_run(
    options: Options, bootstrap: str, index: int, work: Path, placement: Placement | None = None
) -> RunResult:
    ctx = run_context(options, bootstrap, index, work)
    result = RunResult()
    started = time.monotonic()
    end_us = time.time_ns() // 1000 - 60_000_000
    traffic = Traffic(traffic_config(options, end_us, cdr_id_prefix=f"b{index}"))
    await create_run_topics(ctx)
    try:
        step("applying the set-up with a worker", index)
        worker = await apply_setup(ctx, traffic, result)
        counts = Counts()
        result.produce_rate = await produce(ctx, traffic, setup=False, counts=counts)
        result.rater_expected = counts.good
        step(f"backlog of {options.cdrs:,} CDRs at {result.produce_rate:,.0f}/s; ceiling", index)
        result.ceiling = await ceiling(ctx, options.cdrs)
        step(f"ceiling {result.ceiling.per_s:,.0f}/s; plain Faust", index)
        result.faust = await plain_faust(ctx, min(options.faust_cdrs, options.cdrs))
        step(f"plain Faust {result.faust.per_s:,.0f}/s; rater draining", index)
        try:
            await drain(ctx, worker, result)
            step(f"rater {result.rater.per_s:,.0f}/s; latency phase", index)
            assert worker.proc is not None
            if result.rater.per_s >= 2:  # else the drain measured nothing to take half of
                offered = options.latency_rate or result.rater.per_s / 2
                result.latency = await latency(ctx, worker, end_us, offered, placement)
            result.rss_end_kib = rss_kib(worker.proc.pid)
        finally:
            worker.stop()
        changelog = await changelog_of(ctx)
        result.state_avg = changelog.mean_state
        result.state_max = max(changelog.per_tenant().values(), default=0)
        rated = result.rater.records + result.latency.seen
        result.changelog_per_cdr = changelog.bytes / max(rated, 1)
    finally:
        with contextlib.suppress(Exception):
            await delete_run_topics(ctx)
    result.seconds = time.monotonic() - started
    return result


def step(text: str, index: int) -> None:
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    click.echo(f"[{stamp}] run {index + 1}: {text}", err=True)


# ---------------------------------------------------------------------- tariff index


def tariff_index(rows: int, lookups: int = 100_000, seed: int = 1) -> IndexResult:
    """Build time (decode + insert of every row, as a worker does) and lookup cost."""
    end_us = time.time_ns() // 1000
    config = TrafficConfig(end_us=end_us, cdrs=lookups, tenants=100, tariff_rows=rows, seed=seed)
    traffic = Traffic(config)
    messages = traffic.tariff_messages()
    proc = Processor(TariffIndex())
    started = time.perf_counter()
    for offset, (key, value) in enumerate(messages):
        proc.tariff(key, value, TARIFFS, 0, offset)
    build_s = time.perf_counter() - started
    decoded = [decode_cdr(key, value) for key, value, _ in traffic.cdrs()]
    lookup = proc.tariffs.lookup
    currency = config.currency
    misses = 0
    started = time.perf_counter()
    for cdr in decoded:
        if lookup(cdr.call_type, currency, cdr.destination_digits, cdr.started_at) is None:
            misses += 1
    lookup_us = (time.perf_counter() - started) / len(decoded) * 1e6
    return IndexResult(len(proc.tariffs), build_s, lookup_us, misses)


# --------------------------------------------------------------------------- reporting


def machine() -> dict[str, str]:
    cpu, mem = "unknown", "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cores": str(os.cpu_count()),
        "memory": mem,
        "cpu": cpu,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


Row = tuple[str, list[float], str, str, bool | None]  # label, per run, format, target, met


def measures(runs: list[RunResult], latency_rate: float | None = None) -> list[Row]:
    """The result table, one row per measure; ratios are taken within each run.

    The p99 target is judged only at half the peak; at a rate given for an
    A/B comparison the row just reports it.
    """
    rater = [r.rater.per_s for r in runs]
    vs_ceiling = [r.rater.per_s / r.ceiling.per_s if r.ceiling.per_s else 0 for r in runs]
    vs_faust = [r.rater.per_s / r.faust.per_s if r.faust.per_s else 0 for r in runs]
    p99 = [r.latency.quantile("consumed_ms", 0.99) for r in runs]
    growth = [rss_growth(r) for r in runs]
    idle = [r.idle_state for r in runs]
    latency_row: Row = (
        (
            "**latency p99 ms** at half peak",
            p99,
            ",.0f",
            f"≤ {TARGET_P99_MS:g}",
            median(p99) <= TARGET_P99_MS,
        )
        if latency_rate is None
        else (f"latency p99 ms at {latency_rate:,.0f} CDR/s", p99, ",.0f", "", None)
    )
    mib = 1024
    return [
        ("**rater, CDR/s** (one worker, backlog)", rater, ",.0f",
         f"≥ {TARGET_RATE:,}", median(rater) >= TARGET_RATE),
        ("ceiling: bare aiokafka loop, records/s", [r.ceiling.per_s for r in runs], ",.0f", "",
         None),
        ("plain Faust agent, records/s", [r.faust.per_s for r in runs], ",.0f", "", None),
        ("**rater / ceiling**", vs_ceiling, ".2f", f"≥ {TARGET_VS_CEILING}",
         median(vs_ceiling) >= TARGET_VS_CEILING),
        ("**rater / plain Faust**", vs_faust, ".1f", f"≥ {TARGET_VS_FAUST:g}",
         median(vs_faust) >= TARGET_VS_FAUST),
        ("rater CDR/s over all its records, first to last timestamp",
         [r.rater.records / max(r.rater.span_s, 0.001) for r in runs], ",.0f", "", None),
        ("rater drain, wall s from worker start", [r.rater.wall_s for r in runs], ".1f", "",
         None),
        ("rated records / good CDRs",
         [r.rater.records / max(r.rater_expected, 1) for r in runs], ".3f", "1.000", None),
        ("latency phase: CDR/s offered", [r.latency.offered_per_s for r in runs], ",.0f", "",
         None),
        ("latency p50 ms", [r.latency.quantile("consumed_ms", 0.5) for r in runs], ",.0f", "",
         None),
        latency_row,
        ("latency p50 ms of the last quarter offered (growing: falling behind)",
         [r.latency.quantile("consumed_ms", 0.5, last_quarter=True) for r in runs], ",.0f",
         "", None),
        ("latency p99 ms, to the output record's timestamp",
         [r.latency.quantile("stamped_ms", 0.99) for r in runs], ",.0f", "", None),
        ("latency phase: rated / offered",
         [r.latency.seen / max(r.latency.sent, 1) for r in runs], ".3f", "1.000", None),
        ("worker RSS MiB after the set-up (idle)", [r.rss_setup_kib / mib for r in runs],
         ",.0f", "", None),
        ("worker RSS MiB at 25 % of the drain (median of the samples at 20-30 %)",
         [r.rss_at(0.25) / mib for r in runs], ",.0f", "", None),
        ("worker RSS MiB at the end of the drain (median at 95-100 %)",
         [r.rss_at(1.0) / mib for r in runs], ",.0f", "", None),
        ("worker RSS MiB after the latency phase", [r.rss_end_kib / mib for r in runs],
         ",.0f", "", None),
        ("**RSS growth**, 25 % → 100 % of the drain (inside the warm-up: `make bench-memory`)",
         growth, ".1%",
         f"< {RSS_GROWTH_LIMIT:.0%}", median(growth) < RSS_GROWTH_LIMIT),
        ("**state B per idle tenant** (changelog, after the set-up)", idle, ",.0f",
         f"≤ {TARGET_IDLE_STATE:,}", median(idle) <= TARGET_IDLE_STATE),
        ("state B per tenant after the run, mean (state and seen-id records)",
         [r.state_avg for r in runs], ",.0f", "", None),
        ("state B of the busiest tenant after the run", [r.state_max for r in runs], ",.0f",
         "", None),
        ("changelog bytes written per rated CDR (keys and values: states, seen ids)",
         [r.changelog_per_cdr for r in runs], ",.0f", "", None),
        ("load generator: CDR/s produced", [r.produce_rate for r in runs], ",.0f", "", None),
        ("run took, s", [r.seconds for r in runs], ",.0f", "", None),
    ]  # fmt: skip


def table_row(row: Row) -> str:
    label, values, fmt, target, ok = row
    cells = " | ".join(format(v, fmt) for v in values)
    status = "" if ok is None else f" ({verdict(ok)})"
    return f"| {label} | {cells} | **{format(median(values), fmt)}** | {target}{status} |"


def report(
    options: Options,
    command: str,
    broker: str,
    cores: str,
    runs: list[RunResult],
    index: list[IndexResult],
    facts: dict[str, str],
    took_s: float,
) -> str:
    heads = " | ".join(f"run {i + 1}" for i in range(len(runs)))
    offered = (
        "half the run's rater rate"
        if options.latency_rate is None
        else f"{options.latency_rate:,.0f} CDR/s (given)"
    )
    faust_cdrs = min(options.faust_cdrs, options.cdrs)
    lines = [
        START_MARK,
        "# Stream benchmark: the rater against its ceiling and plain Faust",
        "",
        "One command, one machine, one broker; every run on fresh topics with",
        f"{PARTITIONS} partitions. Produced by `rater bench` (`load/bench/run.py`, whose",
        "docstring gives the method). Throughput: output records over the span of their",
        "record timestamps (the middle 90 % of them). Latency: from a CDR's produce",
        "timestamp to the moment a `read_committed` consumer receives its `rated-cdrs`",
        "record, both on this machine's clock.",
        "",
        "| | |",
        "|---|---|",
        f"| date | {facts['date']} |",
        f"| command | `{command}` |",
        f"| machine | {facts['cores']} cores, {facts['memory']}, {facts['cpu']} |",
        f"| load average at the end | {facts['load']} |",
        f"| python | {facts['python']} |",
        f"| broker | {broker} |",
        f"| backlog | {options.cdrs:,} CDRs over {options.tenants:,} tenants (Zipf s="
        f"{options.zipf:g}), {options.tariff_rows:,} tariff rows, duplicates "
        f"{options.dup_share:.0%}, bad records {options.bad_share:.0%} |",
        f"| plain Faust timed over | the first {faust_cdrs:,} CDRs of the backlog |",
        f"| latency phase | {options.latency_s:g} s at {offered}; {cores} |",
        f"| whole benchmark took | {took_s / 60:.1f} min |",
        "",
        f"| measure | {heads} | median | target |",
        "|---|" + "---|" * len(runs) + "---|---|",
        *(table_row(row) for row in measures(runs, options.latency_rate)),
        "",
        "Tariff index, in process: decode and insert every row as a worker does, then",
        "longest-prefix lookups of 100,000 generated CDRs.",
        "",
        "| rows | build s | build µs per row | lookup µs | lookups without a row |",
        "|---|---|---|---|---|",
        *(
            f"| {x.rows:,} | {x.build_s:.2f} | {x.build_s / x.rows * 1e6:.1f} "
            f"| {x.lookup_us:.2f} | {x.misses} |"
            for x in index
        ),
        END_MARK,
    ]
    return "\n".join(lines) + "\n"


def rss_growth(result: RunResult) -> float:
    quarter, end = result.rss_at(0.25), result.rss_at(1.0)
    return (end - quarter) / quarter if quarter else float("nan")


def write_section(
    path: Path, section: str, start_mark: str = START_MARK, end_mark: str = END_MARK
) -> None:
    """Replace a benchmark's marked section of ``path``, or append it; the rest is kept.

    ``section`` starts with ``start_mark`` and ends with ``end_mark``.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start, end = text.find(start_mark), text.find(end_mark)
    if start != -1 and end > start:
        text = text[:start] + section.rstrip("\n") + text[end + len(end_mark) :]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def write_marked(path: Path, text: str, start_mark: str, end_mark: str) -> None:
    """Write ``text`` as the section between the two marks (see :func:`write_section`)."""
    write_section(path, f"{start_mark}\n{text.rstrip()}\n{end_mark}\n", start_mark, end_mark)


# -------------------------------------------------------------------------------- CLI


def run_bench(options: Options, command: str, write: Path | None) -> str:
    started = time.monotonic()
    click.echo("tariff index at 1,000 and 100,000 rows...", err=True)
    index = [tariff_index(rows) for rows in (1_000, 100_000)]
    work = Path(tempfile.mkdtemp(prefix="rater-bench-"))
    runs: list[RunResult] = []
    try:
        with bench_broker() as (bootstrap, broker, broker_pid):
            placement = placement_for(options, broker_pid)
            cores = cores_in_latency_phase(placement, broker_pid)
            for i in range(options.runs):
                runs.append(run_async(one_run(options, bootstrap, i, work, placement)))
    except BaseException:
        click.echo(f"worker logs kept in {work}", err=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    took = time.monotonic() - started
    text = report(options, command, broker, cores, runs, index, machine(), took)
    if write is not None:
        write_section(write, text)
    return text


def cores_in_latency_phase(placement: Placement | None, broker_pid: int | None) -> str:
    if placement is None:
        return "every process may run on every core"
    where = f"the worker alone on CPU {listed(placement.worker_cpus)}, "
    if broker_pid is None:
        return where + f"the bench on CPU {listed(placement.other_cpus)} (external broker)"
    return where + f"the broker and the bench on CPU {listed(placement.other_cpus)}"


def listed(cpus: frozenset[int]) -> str:
    return ", ".join(str(cpu) for cpu in sorted(cpus))


def placement_for(options: Options, broker_pid: int | None) -> Placement | None:
    """Where ``--isolate-worker`` puts the processes; an external broker stays where it is."""
    if not options.isolate_worker:
        return None
    others = [] if broker_pid is None else [broker_pid]
    try:
        return Placement.split(os.sched_getaffinity(0), others)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def invoked_command() -> str:
    """The command line as a reader would type it again, for the report."""
    program = Path(sys.argv[0])
    if program.name == "rater":
        head = ["rater"]
    elif program.name == "__main__.py":
        head = ["python", "-m", program.parent.name]
    else:
        head = [".venv/bin/python", os.path.relpath(program)]
    return shlex.join([*head, *sys.argv[1:]])


def run_async(coro: Awaitable[RunResult]) -> RunResult:
    return asyncio.run(coro)  # type: ignore[arg-type]


@click.command()
@click.option("--cdrs", type=int, default=None, help="Backlog size [500,000; --quick 20,000].")
@click.option("--tenants", type=int, default=None, help="Tenants [10,000; --quick 500].")
@click.option("--runs", type=int, default=None, help="Repetitions [3; --quick 1].")
@click.option("--faust-cdrs", type=int, default=None, help="CDRs plain Faust is timed on.")
@click.option("--latency-seconds", type=float, default=None, help="Length of the latency phase.")
@click.option(
    "--latency-rate",
    type=float,
    default=None,
    help="Offer the latency phase at this CDR/s, not half the run's peak (for A/B runs).",
)
@click.option("--tariffs", "tariff_rows", type=int, default=None, help="Tariff rows [1,000].")
@click.option("--zipf", type=float, default=None, help="Tenant Zipf exponent [0.8].")
@click.option("--dup-share", type=float, default=None, help="Share of duplicates [0].")
@click.option("--bad-share", type=float, default=None, help="Share of bad records [0].")
@click.option(
    "--isolate-worker",
    is_flag=True,
    default=None,
    help="Latency phase with the worker alone on one core, everything else on the others.",
)
@click.option("--quick", is_flag=True, help="A small smoke version (about a minute).")
@click.option(
    "--write",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write/replace this benchmark's section of that markdown file.",
)
def bench(quick: bool, write: Path | None, **given: object) -> None:
    """Benchmark one rater worker against a bare aiokafka loop and plain Faust.

    Starts its own Kafka on a free port unless KAFKA_BOOTSTRAP_SERVERS is set.
    """
    options = Options.quick() if quick else Options()
    names = {"latency_seconds": "latency_s"}
    changes = {names.get(k, k): v for k, v in given.items() if v is not None}
    options = replace(options, **changes)
    text = run_bench(options, invoked_command(), write)
    click.echo(text)
    if write is not None:
        click.echo(f"written to {write}", err=True)
