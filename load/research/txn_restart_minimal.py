"""Minimal reproduction attempt for issue 16: aiokafka transactions across broker restarts.

No Faust and no rater: ``--producers`` transactional aiokafka producers (one
per "partition", as the rater has) loop over small transactions shaped like the
rater's (AddPartitionsToTxn asked early through the transaction manager, one
batch to each of three topics' partition, commit; abort and begin on an error),
each recording the offsets a committed transaction got. The broker is stopped
and started ``--restarts`` times with ``rater kafka stop/start``. At the end
every partition's last stable offset is compared with its log end and with the
last offset each producer believes committed. Run with the tracing of
``load/txn_trace.py`` installed (it is imported), so the exact requests around
each restart are in the output.

    .venv/bin/python -m load.research.txn_restart_minimal --port 29792 --data-dir .repro/kafka
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from load.research import txn_trace  # noqa: F401  (installs the tracing)

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ("changelog", "rated", "dlq")


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S", time.gmtime()), "RUN", *parts, flush=True)


def kafka(action: str, port: int, data_dir: Path) -> None:
    rater = str(ROOT / ".venv" / "bin" / "rater")
    subprocess.run(
        [rater, "kafka", action, "--port", str(port), "--data-dir", str(data_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    log("broker", action, "done")


FAILURES: dict[str, int] = {}


async def worker(
    bootstrap: str,
    prefix: str,
    partition: int,
    stop: asyncio.Event,
    committed: dict,
    request_timeout_ms: int,
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"{prefix}txn-{partition}",
        transaction_timeout_ms=60_000,
        request_timeout_ms=request_timeout_ms,
        linger_ms=5,
    )
    await producer.start()
    await producer.begin_transaction()
    tps = [TopicPartition(prefix + t, partition) for t in TOPICS]
    n = 0
    while not stop.is_set():
        n += 1
        for tp in tps:  # as the rater's _open_partitions does, before "rating"
            producer._txn_manager.maybe_add_partition_to_txn(tp)
        await asyncio.sleep(random.uniform(0.0, 0.05))  # the rating
        try:
            futures = []
            for tp in tps:
                batch = producer.create_batch()
                for i in range(random.randint(5, 40)):
                    batch.append(key=b"k%d" % i, value=b"v" * 100, timestamp=None)
                batch.close()
                futures.append(
                    (
                        tp,
                        batch.record_count(),
                        await producer.send_batch(batch, tp.topic, partition=tp.partition),
                    )
                )
            reached = {}
            for tp, count, fut in futures:
                reached[tp] = (await fut).offset + count - 1
            await producer.commit_transaction()
        except Exception as exc:  # as the rater's _commit: abort, begin, next batch
            log(f"p{partition} txn {n} failed: {exc!r}")
            FAILURES[type(exc).__name__] = FAILURES.get(type(exc).__name__, 0) + 1
            try:
                await producer.abort_transaction()
            except Exception as exc2:
                log(f"p{partition} abort failed: {exc2!r}")
            try:
                await producer.begin_transaction()
            except Exception as exc3:
                log(f"p{partition} begin failed: {exc3!r}; stopping this producer")
                return
            continue
        for tp, offset in reached.items():
            committed[tp] = offset
        await producer.begin_transaction()
    await producer.stop()


async def offsets(bootstrap: str, tps: list[TopicPartition]) -> dict:
    ends = {}
    for level in ("read_committed", "read_uncommitted"):
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=level)
        await consumer.start()
        try:
            ends[level] = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
    return {tp: (ends["read_committed"][tp], ends["read_uncommitted"][tp]) for tp in tps}


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=29792)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".repro" / "kafka")
    parser.add_argument("--producers", type=int, default=8)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--down", type=str, default="2,10")
    parser.add_argument("--gap", type=str, default="6,12")
    parser.add_argument(
        "--request-timeout-ms",
        type=int,
        default=40_000,
        help="aiokafka's default; below the broker's down time it makes finding A certain",
    )
    args = parser.parse_args()
    down = [float(x) for x in args.down.split(",")]
    gap = [float(x) for x in args.gap.split(",")]
    bootstrap = f"127.0.0.1:{args.port}"
    kafka("start", args.port, args.data_dir.resolve())
    prefix = f"mr{int(time.time()) % 100000}-"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(prefix + t, args.producers, 1) for t in TOPICS])
    await admin.close()
    log("prefix", prefix)
    stop = asyncio.Event()
    committed: dict = {}
    tasks = [
        asyncio.ensure_future(
            worker(bootstrap, prefix, p, stop, committed, args.request_timeout_ms)
        )
        for p in range(args.producers)
    ]
    await asyncio.sleep(random.uniform(*gap))
    for i in range(args.restarts):
        log(f"restart {i + 1}")
        await asyncio.to_thread(kafka, "stop", args.port, args.data_dir.resolve())
        await asyncio.sleep(random.uniform(*down))
        await asyncio.to_thread(kafka, "start", args.port, args.data_dir.resolve())
        await asyncio.sleep(random.uniform(*gap))
    stop.set()
    done, pending = await asyncio.wait(tasks, timeout=120)
    log("producers stopped:", len(done), "still running:", len(pending))
    tps = [TopicPartition(prefix + t, p) for t in TOPICS for p in range(args.producers)]
    await asyncio.sleep(75)  # past transaction.timeout.ms: what is open now stays open
    final = await offsets(bootstrap, tps)
    bad = 0
    for tp in tps:
        lso, leo = final[tp]
        mine = committed.get(tp)
        flag = ""
        if lso < leo:
            flag += " OPEN"
        if mine is not None and mine >= lso:
            flag += f" COMMITTED-PAST-LSO({mine})"
        if flag:
            bad += 1
            log(f"{tp.topic}-{tp.partition}: LSO {lso} LEO {leo}{flag}")
    log(f"RESULT {prefix}: {bad} of {len(tps)} partitions open or committed past the LSO")
    log(f"failed transactions by exception: {FAILURES}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
