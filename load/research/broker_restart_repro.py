"""Reproduce issue 16: restart the broker while a worker rates, then look for open transactions.

Usage (from the project root, a broker of its own on a free port)::

    .venv/bin/python -m load.research.broker_restart_repro --port 29792 \\
        --data-dir .repro/kafka --run-dir .repro/run1 --restarts 3

It starts the broker if needed, creates a fresh topic prefix, produces paced
traffic with ``rater load`` while a worker (``load/txn_trace.py``: the real
worker with every transactional step of its producers printed) rates it, stops
and starts the broker ``--restarts`` times with ``rater kafka stop/start``, waits
for everything to go quiet and then compares each partition's last stable
offset with its log end. Any partition left with an open transaction is
described with Kafka's own TransactionsCommand (describe-producers, describe,
find-hanging). Exit status 1 when a partition was left open. Research tooling:
it sleeps on purpose (down time, spacing between restarts).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

ROOT = Path(__file__).resolve().parents[2]
RATER = [str(ROOT / ".venv" / "bin" / "rater")]


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S", time.gmtime()), *parts, flush=True)


def kafka(action: str, port: int, data_dir: Path) -> None:
    started = time.monotonic()
    subprocess.run(
        [*RATER, "kafka", action, "--port", str(port), "--data-dir", str(data_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    log(f"broker {action}: {time.monotonic() - started:.1f}s")


async def offsets(bootstrap: str, prefix: str) -> dict[TopicPartition, tuple[int, int]]:
    """(last stable offset, log end offset) of every partition of the run's topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    tps = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
    ends = {}
    for level in ("read_committed", "read_uncommitted"):
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=level)
        await consumer.start()
        try:
            ends[level] = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
    return {tp: (ends["read_committed"][tp], ends["read_uncommitted"][tp]) for tp in tps}


# The broker's jars hold no tools; kafka-tools (TransactionsCommand, DumpLogSegments) is
# fetched once with `mvn dependency:get -Dartifact=org.apache.kafka:kafka-tools:4.4.0`.
TOOLS_JAR = Path.home() / ".m2/repository/org/apache/kafka/kafka-tools/4.4.0/kafka-tools-4.4.0.jar"


def tool(lib: Path, bootstrap: str, *args: str) -> str:
    proc = subprocess.run(
        [
            "java",
            "-cp",
            f"{lib}/*:{TOOLS_JAR}",
            "org.apache.kafka.tools.TransactionsCommand",
            "--bootstrap-server",
            bootstrap,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return (proc.stdout + proc.stderr).strip()


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=29792)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".repro" / "kafka")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--cdrs", type=int, default=60000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--poll", type=int, default=500, help="RATER_MAX_POLL_RECORDS")
    parser.add_argument("--down", type=str, default="5,20", help="down time range, seconds")
    parser.add_argument("--gap", type=str, default="10,15", help="up time between restarts")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--preload",
        action="store_true",
        help="produce all input before the worker starts (it then rates flat out, big batches)",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    down = [float(x) for x in args.down.split(",")]
    gap = [float(x) for x in args.gap.split(",")]
    data_dir = args.data_dir.resolve()
    run = args.run_dir.resolve()
    run.mkdir(parents=True, exist_ok=True)
    bootstrap = f"127.0.0.1:{args.port}"
    kafka("start", args.port, data_dir)
    tag = f"rc{int(time.time()) % 100000}"
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RATER_APP_ID": tag,
        "RATER_TOPIC_PREFIX": f"{tag}-",
        "RATER_PARTITIONS": str(args.partitions),
        "RATER_DATA_DIR": str(run / "data"),
        "RATER_WEB_PORT": "0",
        "RATER_EXPIRY_SWEEP": "off",
        "RATER_MAX_POLL_RECORDS": str(args.poll),
    }
    log("run", tag, "in", run)
    subprocess.run([*RATER, "topics", "create"], env=env, check=True, stdout=subprocess.DEVNULL)
    load_log = (run / "load.log").open("ab")
    load_cmd = [
        *RATER,
        "load",
        "--cdrs",
        str(args.cdrs),
        "--tenants",
        str(args.tenants),
        "--seed",
        str(rng.randrange(1000)),
    ]
    if args.preload:
        subprocess.run([*load_cmd, "--max"], env=env, cwd=ROOT, stdout=load_log, check=True)
        log("preloaded", args.cdrs, "CDRs")
    worker_log = (run / "worker.log").open("ab")
    worker = subprocess.Popen(
        [sys.executable, "-m", "load.research.txn_trace", "worker", "--loglevel", "info"],
        env=env,
        cwd=ROOT,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    loader = subprocess.Popen(
        ["true"] if args.preload else [*load_cmd, "--rate", str(args.rate)],
        env=env,
        cwd=ROOT,
        stdout=load_log,
        stderr=subprocess.STDOUT,
    )
    restarts = []
    try:
        await asyncio.sleep(rng.uniform(*gap))
        for i in range(args.restarts):
            log(f"restart {i + 1}: stopping")
            stopped = time.time()
            kafka("stop", args.port, data_dir)
            await asyncio.sleep(rng.uniform(*down))
            kafka("start", args.port, data_dir)
            restarts.append((stopped, time.time()))
            await asyncio.sleep(rng.uniform(*gap))
        log("waiting for the load generator")
        try:
            loader.wait(timeout=max(60.0, args.cdrs / args.rate * 2))
        except subprocess.TimeoutExpired:
            log("load generator still running: stopped")
            loader.terminate()
        log("load exit", loader.returncode)
        # Quiet: the output log ends stop moving for 30 s, or 240 s pass (a partition
        # stuck in a fail-and-abort loop writes an abort marker per attempt for ever).
        last, still_since, waited = None, time.monotonic(), time.monotonic()
        while time.monotonic() - still_since < 30 and time.monotonic() - waited < 240:
            await asyncio.sleep(5)
            now = await offsets(bootstrap, f"{tag}-")
            ends = {tp: e for tp, (_, e) in now.items()}
            if ends != last:
                last, still_since = ends, time.monotonic()
        # An open transaction the worker still holds ends within its own next batch, and
        # the coordinator aborts one it knows of after transaction.timeout.ms (60 s): wait
        # past that, then keep only partitions whose stable offset did not move either.
        await asyncio.sleep(70)
        first = await offsets(bootstrap, f"{tag}-")
        await asyncio.sleep(15)
        final = await offsets(bootstrap, f"{tag}-")
        open_tps = {tp: v for tp, v in final.items() if v[0] < v[1] and first[tp][0] == v[0]}
        moving = sorted(
            f"{tp.topic}-{tp.partition}"
            for tp, v in final.items()
            if v[0] < v[1] and first[tp][0] != v[0]
        )
        text = (run / "worker.log").read_text(errors="replace")
        log(
            "worker: failed batches",
            text.count("batch failed"),
            "OutOfOrderSequenceNumber",
            text.count("BATCH_FAILED") and text.count("OutOfOrderSequenceNumber()"),
            "still aborting:",
            moving,
        )
        log("worker alive:", worker.poll() is None)
        hms = [time.strftime("%H:%M:%S", time.gmtime(t)) for pair in restarts for t in pair]
        log("restarts (stopped, started):", hms)
        if not open_tps:
            log(f"RESULT {tag}: every partition stable ({len(final)} partitions)")
            return 0
        log(f"RESULT {tag}: {len(open_tps)} of {len(final)} partitions left open")
        lib = ROOT / "deploy" / "kafka" / "lib" / "4.4.0"
        for tp, (lso, leo) in sorted(open_tps.items()):
            log(f"  {tp.topic}-{tp.partition}: LSO {lso} < LEO {leo}")
            print(
                tool(
                    lib,
                    bootstrap,
                    "describe-producers",
                    "--topic",
                    tp.topic,
                    "--partition",
                    str(tp.partition),
                ),
                flush=True,
            )
        for partition in sorted({tp.partition for tp in open_tps}):
            print(
                tool(lib, bootstrap, "describe", "--transactional-id", f"{tag}-rater-{partition}"),
                flush=True,
            )
        print(tool(lib, bootstrap, "find-hanging", "--broker-id", "1"), flush=True)
        return 1
    finally:
        if loader.poll() is None:
            loader.terminate()
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
