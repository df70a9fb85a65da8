"""Resident memory of one rater worker along a long drain.

Run from the project root::

    .venv/bin/python -m load soak [--cdrs 3000000] [--tenants 10000]
                                         [--write docs/benchmarks.md]

``rater bench`` judges "resident memory does not grow with the number of CDRs"
by the growth from 25 % to 100 % of a 500,000-CDR drain. Memory that fills up
to a fixed cap (RocksDB's cache and memtables, malloc's arenas, decoded tenant
states) grows during such a drain too, and then stops; growth per CDR does
not stop. This drains a longer backlog with the same worker, traffic and
broker as the benchmark and prints the resident size at every tenth of it,
so the two can be told apart: it reports the growth over the last half and
the last third of the drain.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from load.bench.run import (
    RSS_GROWTH_LIMIT,
    Options,
    RunContext,
    RunResult,
    apply_setup,
    bench_broker,
    create_run_topics,
    delete_run_topics,
    level_at,
    machine,
    produce,
    run_context,
    traffic_config,
    wait_drained,
    write_marked,
)
from load.traffic import Counts, Traffic
from rater.core.topics import CDRS

SOAK_START = "<!-- rater-bench:memory-soak:start -->"
SOAK_END = "<!-- rater-bench:memory-soak:end -->"
TENTHS = [round(0.1 * i, 1) for i in range(1, 11)]


@dataclass
class Soak:
    cdrs: int
    setup_kib: int = 0
    # (share drained, VmRSS, RssAnon, RssFile in KiB)
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)
    seconds: float = 0.0

    def at(self, share: float, column: int = 1) -> int:
        """One column's level around ``share`` of the drain (see ``level_at``)."""
        return level_at([(sample[0], sample[column]) for sample in self.samples], share)

    def growth(self, start: float, column: int = 1) -> float:
        first = self.at(start, column)
        return (self.at(1.0, column) - first) / first if first else float("nan")


def status_kib(pid: int) -> tuple[int, int, int]:
    """VmRSS, RssAnon and RssFile of a process, from /proc (Linux)."""
    wanted = {"VmRSS:": 0, "RssAnon:": 0, "RssFile:": 0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name = line.split(":", 1)[0] + ":"
        if name in wanted:
            wanted[name] = int(line.split()[1])
    return wanted["VmRSS:"], wanted["RssAnon:"], wanted["RssFile:"]


async def soak(ctx: RunContext) -> Soak:
    result = Soak(ctx.options.cdrs)
    end_us = time.time_ns() // 1000 - 60_000_000
    traffic = Traffic(traffic_config(ctx.options, end_us, cdr_id_prefix="soak"))
    await create_run_topics(ctx)
    try:
        setup = RunResult()
        worker = await apply_setup(ctx, traffic, setup)
        result.setup_kib = setup.rss_setup_kib
        await produce(ctx, traffic, setup=False, counts=Counts())
        print(f"backlog of {ctx.options.cdrs:,} CDRs produced; draining", file=sys.stderr)

        def sample(share: float) -> None:
            if worker.proc is not None and worker.alive():
                result.samples.append((share, *status_kib(worker.proc.pid)))

        started = time.monotonic()
        worker.start()
        try:
            await wait_drained(ctx, ctx.topic(CDRS), worker, sample)
        finally:
            worker.stop()
        result.seconds = time.monotonic() - started
    finally:
        with contextlib.suppress(Exception):
            await delete_run_topics(ctx)
    return result


def report(result: Soak, command: str, broker: str) -> str:
    info = machine()
    mib = 1024
    rows = [
        f"| {share:.0%} | {result.at(share) / mib:,.1f} | {result.at(share, 2) / mib:,.1f} "
        f"| {result.at(share, 3) / mib:,.1f} |"
        for share in TENTHS
    ]
    half, third = result.growth(0.5), result.growth(0.7)
    per_100k = (result.at(1.0) - result.at(0.5)) / mib / (result.cdrs * 0.5 / 100_000)
    lines = [
        "## Resident memory along a long drain",
        "",
        "One worker drains a backlog several times the benchmark's, with the same",
        "traffic (10,000 tenants, Zipf 0.8), on its own broker; its resident size is",
        "sampled every 0.25 s (the median of the samples around each point). Produced by",
        "`load/memory_soak.py`. The target is judged on the last half of the drain:",
        "memory that fills up to a cap has stopped growing by then, growth per CDR has not.",
        "",
        "| | |",
        "|---|---|",
        f"| date | {info['date']} |",
        f"| machine | {info['cores']} cores, {info['memory']}, {info['cpu']} |",
        f"| broker | {broker} |",
        f"| command | `{command}` |",
        f"| CDRs drained | {result.cdrs:,} in {result.seconds:,.0f} s |",
        f"| worker RSS after the set-up, before any CDR | {result.setup_kib / mib:,.1f} MiB |",
        "",
        "| drained | RSS MiB | of which anonymous | of which file-backed |",
        "|---|---|---|---|",
        *rows,
        "",
        "| growth | | target |",
        "|---|---|---|",
        f"| from 25 % to 100 % (what `rater bench` judges) | {result.growth(0.25):+.1%} | |",
        f"| **from 50 % to 100 %**: does the worker still grow once warm? | **{half:+.1%}** "
        f"({per_100k:+.2f} MiB per 100,000 CDRs) | < {RSS_GROWTH_LIMIT:.0%} "
        f"({'met' if half < RSS_GROWTH_LIMIT else 'MISSED'}) |",
        f"| from 70 % to 100 % | {third:+.1%} | |",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m load soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cdrs", type=int, default=3_000_000)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--write", metavar="FILE", help="write the markdown report there")
    args = parser.parse_args(argv)
    command = shlex.join(
        [".venv/bin/python", "-m", "load", "soak", *(sys.argv[1:] if argv is None else argv)]
    )
    options = replace(Options(), cdrs=args.cdrs, tenants=args.tenants, runs=1)
    work = Path(tempfile.mkdtemp(prefix="rater-soak-"))
    with bench_broker() as (bootstrap, broker, _pid):
        result = asyncio.run(soak(run_context(options, bootstrap, 0, work)))
    text = report(result, command, broker)
    print(text)
    if args.write:
        write_marked(Path(args.write), text, SOAK_START, SOAK_END)
        print(f"written to {args.write} (its memory-soak section; the rest is kept)")


if __name__ == "__main__":
    main()
