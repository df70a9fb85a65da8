"""The cost of misplaced input: CDR/s of a backlog written by crc32 against one by murmur2.

Run from the project root (the lead runs benchmarks; the machine is shared)::

    .venv/bin/python -m load misplaced [--cdrs N] [--tenants N] [--runs N]

Same run, same broker (its own on a free port, or KAFKA_BOOTSTRAP_SERVERS),
fresh topics each time. Tenants are opened through the Java client's
partitioner (murmur2), as `rater bench` does, and one worker applies that
set-up and stops. Then a CDR backlog is produced either by murmur2 (every
CDR on its tenant's partition) or by librdkafka's default, crc32 (most CDRs
on another partition: the worker moves each to its tenant's partition, then
rates it; rater/stream/placement.py). The worker drains it; the rate is
taken from the rated records' timestamps over their middle 90 %, as in
`rater bench`, and the wall time from the worker's start until the last is
committed. Runs alternate which placement goes first.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import click
import orjson

from load.bench.run import (
    Options,
    RunResult,
    apply_setup,
    bench_broker,
    create_run_topics,
    delete_run_topics,
    rate_of,
    run_context,
    traffic_config,
)
from load.produce import BatchSender, new_producer, produce_cdrs
from load.traffic import Counts, Traffic
from rater.core.topics import CDRS
from rater.devkit.partitioners import PARTITIONERS, Partitioner
from rater.devkit.worker_process import WorkerProcess, free_port


class PlacedSender(BatchSender):
    """A bulk sender that places keys as another client's partitioner would."""

    def __init__(self, producer: object, place: Partitioner) -> None:
        super().__init__(producer)  # type: ignore[arg-type]
        self.place = place

    def partition(self, topic: str, key: bytes) -> int:
        return self.place(key, self._partitions[topic])


def stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/rater/stats/", timeout=5) as answer:
        return orjson.loads(answer.read())


async def drain(options: Options, bootstrap: str, index: int, work: Path, placement: str) -> dict:
    ctx = run_context(options, bootstrap, index, work)
    ctx = replace(ctx, settings=replace(ctx.settings, web_port=free_port()))
    traffic = Traffic(traffic_config(options, time.time_ns() // 1000 - 60_000_000))
    await create_run_topics(ctx)
    try:
        worker = await apply_setup(ctx, traffic, RunResult())
        producer = new_producer(ctx.settings)
        await producer.start()
        counts = Counts()
        try:
            sender = PlacedSender(producer, PARTITIONERS[placement])
            await sender.prepare([ctx.topic(CDRS)])
            await produce_cdrs(sender, ctx.topic(CDRS), traffic.cdrs(counts), options.cdrs)
        finally:
            await producer.stop()
        started = time.monotonic()
        worker.start()
        try:
            rated, moved = await wait_rated(ctx.settings.web_port, counts.good, worker, options)
            wall = time.monotonic() - started
        finally:
            worker.stop()
        rate = await rate_of(bootstrap, ctx.topic("rated-cdrs"))
        return {
            "placement": placement,
            "cdrs": rated,
            "moved": moved,
            "wall_s": wall,
            "per_s": rate.per_s,
        }
    finally:
        await delete_run_topics(ctx)


async def wait_rated(
    port: int, want: int, worker: WorkerProcess, options: Options
) -> tuple[int, int]:
    """Poll the worker's stats until it has committed ``want`` rated CDRs."""
    deadline = time.monotonic() + options.timeout_s
    while True:
        try:
            seen = await asyncio.to_thread(stats, port)
        except OSError:  # the web server is not up yet
            seen = {"outputs_committed": {}, "records_moved": 0}
        rated = seen["outputs_committed"].get("rated-cdrs", 0)
        if rated >= want:
            return rated, seen["records_moved"]
        if not worker.alive() or time.monotonic() > deadline:
            raise click.ClickException(f"{rated:,} of {want:,} rated; see {worker.log_path}")
        await asyncio.sleep(0.5)  # poll interval of the condition above


@click.command()
@click.option("--cdrs", default=200_000, show_default=True, help="CDRs per backlog.")
@click.option("--tenants", default=10_000, show_default=True)
@click.option("--runs", default=1, show_default=True, help="Pairs of backlogs.")
def main(cdrs: int, tenants: int, runs: int) -> None:
    options = Options(cdrs=cdrs, tenants=tenants, runs=runs)
    work = Path(tempfile.mkdtemp(prefix="rater-misplaced-"))
    results = []
    with bench_broker() as (bootstrap, description, _pid):
        click.echo(f"broker: {description}", err=True)
        for run in range(runs):
            order = ["murmur2", "crc32"] if run % 2 == 0 else ["crc32", "murmur2"]
            for j, placement in enumerate(order):
                click.echo(f"run {run + 1}: {placement} backlog of {cdrs:,} CDRs", err=True)
                results.append(asyncio.run(drain(options, bootstrap, 2 * run + j, work, placement)))
    click.echo("| run | placement | CDRs rated | moved | wall s | CDR/s (middle 90 %) |")
    click.echo("|---|---|---|---|---|---|")
    for i, r in enumerate(results):
        click.echo(
            f"| {i // 2 + 1} | {r['placement']} | {r['cdrs']:,} | {r['moved']:,} "
            f"| {r['wall_s']:.1f} | {r['per_s']:,.0f} |"
        )
    for run in range(runs):
        pair = {r["placement"]: r for r in results[2 * run : 2 * run + 2]}
        ratio = pair["crc32"]["per_s"] / max(pair["murmur2"]["per_s"], 1)
        click.echo(f"run {run + 1}: crc32 / murmur2 = {ratio:.2f}")


if __name__ == "__main__":
    main()
