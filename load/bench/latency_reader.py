"""The latency phase's reader of rated records, run in a process of its own.

In the bench's own process it shared one event loop with the paced producer.
Decoding a large committed batch of rated records (a few thousand at once)
held the producer's pacing for up to a couple of hundred milliseconds, and
the producer then offered the missed records in one burst. The worker saw
bursts a real fleet of switches never sends, and each burst made its next
batch, commit and visible batch larger still (docs/benchmark-notes.md, session 9).

The process prints ``ready`` once its positions are fixed at the topic's end,
then, when it has seen ``expected`` latency CDRs or is sent SIGTERM (the
bench gave up waiting), one JSON line: for each CDR seen, its index, the
wall-clock ms it was read at, and its record's timestamp.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from dataclasses import dataclass

import click
import orjson
from aiokafka import AIOKafkaConsumer

from load import module_env
from load.produce import partitions_of
from rater.config import Settings

READY = b"ready\n"
CDR_ID = b'"cdr_id":"'


@dataclass
class Seen:
    """The latency CDRs read, in the order read; times are epoch ms."""

    indexes: list[int]
    read_ms: list[float]
    record_ms: list[int]


def index_of(value: bytes, prefix: bytes) -> int | None:
    """The CDR index in a rated record's ``cdr_id`` (``<prefix>-<index>``), or None if not ours.

    A byte search, not a JSON decode: this runs for every rated record.
    """
    start = value.find(CDR_ID)
    if start < 0:
        return None
    start += len(CDR_ID)
    end = value.find(b'"', start)
    cdr_id = value[start:end]
    if not cdr_id.startswith(prefix + b"-"):
        return None
    return int(cdr_id[len(prefix) + 1 :])


async def read(bootstrap: str, topic: str, prefix: bytes, expected: int) -> Seen:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        **Settings.from_env().security.client_kwargs(),
    )
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)  # resolve "end" now, before anything is offered
        stop = asyncio.Event()
        # Before READY: the bench may stop the reader as soon as it reads READY.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        sys.stdout.buffer.write(READY)
        sys.stdout.buffer.flush()
        seen = Seen([], [], [])
        while len(seen.indexes) < expected and not stop.is_set():
            batch = await consumer.getmany(*tps, timeout_ms=100)
            now_ms = time.time() * 1000
            for records in batch.values():
                for record in records:
                    index = index_of(record.value, prefix)
                    if index is not None:
                        seen.indexes.append(index)
                        seen.read_ms.append(now_ms)
                        seen.record_ms.append(record.timestamp)
        return seen
    finally:
        await consumer.stop()


async def start(
    bootstrap: str, topic: str, prefix: str, expected: int
) -> asyncio.subprocess.Process:
    """This module as a process of its own, returned once it is positioned (``ready``).

    Its output is to be read to the end: one JSON line of :class:`Seen`.
    """
    reader = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "load.bench.latency_reader",
        bootstrap,
        topic,
        prefix,
        str(expected),
        stdout=asyncio.subprocess.PIPE,
        env=module_env(),
    )
    assert reader.stdout is not None
    line = await asyncio.wait_for(reader.stdout.readline(), 60.0)
    if line != READY:
        await reader.wait()
        raise click.ClickException(f"the latency reader failed to start (exit {reader.returncode})")
    return reader


@click.command()
@click.argument("bootstrap")
@click.argument("topic")
@click.argument("prefix")
@click.argument("expected", type=int)
def main(bootstrap: str, topic: str, prefix: str, expected: int) -> None:
    seen = asyncio.run(read(bootstrap, topic, prefix.encode(), expected))
    sys.stdout.buffer.write(orjson.dumps(seen.__dict__) + b"\n")


if __name__ == "__main__":
    main()
