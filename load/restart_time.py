"""Time from a worker's ``kill -9`` to the restarted worker's next committed output.

Run from the project root::

    .venv/bin/python -m load restart [--kills 8] [--rate 300]
                                          [--write docs/benchmarks.md]

One worker rates a steady stream of CDRs (``--rate`` per second, generated
traffic) on fresh topics. It is killed with SIGKILL and started again at
once, ``--kills`` times; each time the script measures from the kill to the
moment a ``read_committed`` consumer of ``rated-cdrs`` receives a record the
restarted process wrote (its producer stamped it after the kill: the killed
process can write nothing after it). That is done twice, back to back on the
same broker: with dynamic membership (no ``RATER_INSTANCE_ID``) and with a
static instance id (decisions.md D46 ("Static group membership")). Between two
kills the restarted worker rates for ``--settle`` seconds, so every kill
lands on a worker that is rating, not recovering.

Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set, else starts its own broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from load.bench.run import bench_broker, machine, write_marked
from load.produce import BatchSender, new_producer, produce_cdrs, produce_setup
from load.traffic import Traffic, TrafficConfig
from rater.config import Settings
from rater.core.topics import ACCOUNT_EVENTS, CDRS, TARIFFS
from rater.devkit.worker_process import WorkerProcess
from rater.stream.topics import ensure_topics

START = "<!-- rater-bench:restart:start -->"
END = "<!-- rater-bench:restart:end -->"
TARGET_S = 3.0
GIVE_UP_S = 120.0  # one restart that takes longer is reported as a failure


@dataclass
class Outputs:
    """What the ``read_committed`` reader of ``rated-cdrs`` has received."""

    received: list[tuple[float, int]] = field(default_factory=list)  # (wall s, stamp ms)

    def first_stamped_after(self, wall_s: float, start: int = 0) -> float | None:
        """When a record stamped after ``wall_s`` arrived (wall s), or None yet."""
        for received_at, stamp_ms in self.received[start:]:
            if stamp_ms > wall_s * 1000:
                return received_at
        return None


@dataclass
class Mode:
    name: str
    instance_id: str | None
    seconds: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


async def read_outputs(settings: Settings, outputs: Outputs) -> None:
    consumer = AIOKafkaConsumer(
        settings.topic("rated-cdrs"),
        bootstrap_servers=settings.bootstrap_servers,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        **settings.security.client_kwargs(),
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batches.values():
                outputs.received.extend((now, record.timestamp) for record in records)
    finally:
        await consumer.stop()


async def wait_until(what: str, condition: object, timeout: float, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if not worker.alive():
            raise RuntimeError(f"worker died waiting for {what}; see {worker.log_path}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout:.0f}s; see {worker.log_path}")
        await asyncio.sleep(0.01)  # poll interval of a measurement, not a synchronisation


async def measure(
    mode: Mode, bootstrap: str, work: Path, kills: int, rate: float, settle: float
) -> None:
    run = f"restart-{uuid.uuid4().hex[:6]}-"
    settings = Settings(
        bootstrap_servers=bootstrap,
        app_id=run + "rater",
        topic_prefix=run,
        partitions=8,
        data_dir=work / f"{mode.name.split()[0]}-data",
        web_port=0,
        expiry_sweep=False,
        instance_id=mode.instance_id,
    )
    await ensure_topics(settings)
    traffic = Traffic(
        TrafficConfig(
            end_us=time.time_ns() // 1000 - 60_000_000,
            cdrs=10_000_000,
            tenants=200,
            tariff_rows=200,
            seed=7,
            cdr_id_prefix=run,
        )
    )
    producer = new_producer(settings)
    await producer.start()
    sender = BatchSender(producer)
    await sender.prepare(settings.topic(t) for t in (TARIFFS, ACCOUNT_EVENTS, CDRS))
    await produce_setup(sender, settings, traffic)
    feed = asyncio.ensure_future(
        produce_cdrs(sender, settings.topic(CDRS), traffic.cdrs(), 10_000_000, rate)
    )
    outputs = Outputs()
    reader = asyncio.ensure_future(read_outputs(settings, outputs))
    worker = WorkerProcess(settings, work / f"{mode.name.split()[0]}-worker.log")
    try:
        worker.start()
        await wait_until("first output", lambda: outputs.received, GIVE_UP_S, worker)
        for kill in range(1, kills + 1):
            seen = len(outputs.received)
            ready_at = time.time()
            await wait_until(
                "steady output",
                lambda: time.time() - ready_at > settle and len(outputs.received) > seen,  # noqa: B023
                GIVE_UP_S,
                worker,
            )
            start = len(outputs.received)
            killed_at = time.time()
            worker.kill()
            worker.start()
            try:
                await wait_until(
                    "output after the restart",
                    lambda: outputs.first_stamped_after(killed_at, start) is not None,  # noqa: B023
                    GIVE_UP_S,
                    worker,
                )
            except (TimeoutError, RuntimeError) as exc:
                mode.failures += 1
                print(f"{mode.name} kill {kill}: {exc}", file=sys.stderr)
                worker.kill()
                worker.start()
                continue
            back = outputs.first_stamped_after(killed_at, start)
            assert back is not None
            mode.seconds.append(back - killed_at)
            print(
                f"{mode.name} kill {kill}: output again after {back - killed_at:.2f} s",
                file=sys.stderr,
            )
    finally:
        worker.stop()
        for task in (feed, reader):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await producer.stop()


def report(modes: list[Mode], command: str, broker: str, rate: float, settle: float) -> str:
    info = machine()
    lines = [
        "## Time back after a kill -9: static and dynamic membership",
        "",
        "One worker rates generated CDRs at a steady rate on fresh topics (8 partitions,",
        "200 tenants); it is killed with SIGKILL and started again at once. Measured: from",
        "the kill to the moment a `read_committed` consumer of `rated-cdrs` receives the",
        "first record the restarted worker wrote. The two modes ran back to back on the",
        'same broker. Produced by `python -m load restart` (decisions.md D46, "Static group',
        'membership").',
        "",
        "| | |",
        "|---|---|",
        f"| date | {info['date']} |",
        f"| machine | {info['cores']} cores, {info['memory']}, {info['cpu']} |",
        f"| load average at the end | {info['load']} |",
        f"| python | {info['python']} |",
        f"| broker | {broker} |",
        f"| command | `{command}` |",
        f"| offered | {rate:,.0f} CDR/s; {settle:.0f} s of rating between two kills |",
        "",
        "| membership | kills | seconds from kill to committed output, each | median | target |",
        "|---|---|---|---|---|",
    ]
    for mode in modes:
        each = ", ".join(f"{s:.1f}" for s in mode.seconds) or "none"
        if mode.failures:
            each += f" ({mode.failures} over {GIVE_UP_S:.0f} s)"
        target = ""
        if mode.instance_id is not None:
            ok = mode.median < TARGET_S and not mode.failures
            target = f"< {TARGET_S:.0f} s ({'met' if ok else 'MISSED'})"
        lines.append(
            f"| {mode.name} | {len(mode.seconds) + mode.failures} | {each} "
            f"| **{mode.median:.1f}** | {target} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m load restart", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--rate", type=float, default=300.0, help="CDRs per second offered")
    parser.add_argument("--settle", type=float, default=3.0, help="rating seconds between kills")
    parser.add_argument("--write", metavar="FILE", help="write the markdown report there")
    parser.add_argument("--only", choices=["dynamic", "static"], help="measure one mode only")
    args = parser.parse_args(argv)
    command = shlex.join(
        [".venv/bin/python", "-m", "load", "restart", *(sys.argv[1:] if argv is None else argv)]
    )
    work = Path(tempfile.mkdtemp(prefix="rater-restart-"))
    modes = [
        Mode("dynamic (no RATER_INSTANCE_ID)", None),
        Mode("static (RATER_INSTANCE_ID=worker-0)", "worker-0"),
    ]
    modes = [mode for mode in modes if args.only in (None, mode.name.split()[0])]
    with bench_broker() as (bootstrap, broker, _pid):
        for mode in modes:
            asyncio.run(measure(mode, bootstrap, work, args.kills, args.rate, args.settle))
    text = report(modes, command, broker, args.rate, args.settle)
    print(text)
    if args.write:
        write_marked(Path(args.write), text, START, END)
        print(f"written to {args.write} (its restart section; the rest is kept)")


if __name__ == "__main__":
    main()
