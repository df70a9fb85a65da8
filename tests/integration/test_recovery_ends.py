"""Recovery ends on a real transactional changelog (rater/stream/recovery_ends.py).

A changelog written in transactions ends with a marker, or with an aborted
batch: the last offset is never a record a read_committed reader receives.
The end handed to Faust's recovery must be one past the last record it does
receive, and past what the local table already holds when nothing is left.
"""

from __future__ import annotations

import socket
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from rater.devkit.localkafka.admin import TopicFactory
from rater.stream.recovery_ends import reachable_ends

pytestmark = pytest.mark.integration


async def _end(bootstrap: str, tp: TopicPartition) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


async def test_end_moves_back_past_markers_and_aborted_records(
    kafka_bootstrap: str, topic_factory: TopicFactory, unique_prefix: str
) -> None:
    topic = await topic_factory.create("changelog", partitions=2)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=unique_prefix + "p"
    )
    await producer.start()
    try:
        async with producer.transaction():  # committed: offsets 0-2, marker at 3
            for i in range(3):
                await producer.send(topic, b"v%d" % i, key=b"k", partition=0)
        await producer.begin_transaction()  # aborted: offsets 4-5, marker at 6
        for i in range(2):
            await producer.send(topic, b"x%d" % i, key=b"k", partition=0)
        await producer.flush()
        await producer.abort_transaction()
        async with producer.transaction():  # partition 1: committed 0-1, marker at 2
            for i in range(2):
                await producer.send(topic, b"w%d" % i, key=b"k", partition=1)
    finally:
        await producer.stop()
    ends = {tp0: await _end(kafka_bootstrap, tp0), tp1: await _end(kafka_bootstrap, tp1)}
    assert ends == {tp0: 7, tp1: 3}  # markers and aborted records count as offsets
    client = {"bootstrap_servers": kafka_bootstrap}

    # Nothing held locally: each end is one past the last committed record.
    assert await reachable_ends(client, ends, lambda tp: -1) == {tp0: 3, tp1: 2}
    # The table holds everything committed: nothing to read, the end is just past it.
    held = {tp0: 2, tp1: 1}
    assert await reachable_ends(client, ends, held.get) == {tp0: 3, tp1: 2}
    # Not a changelog (None): Faust's end is kept.
    assert await reachable_ends(client, ends, lambda tp: None) == ends


async def test_a_broker_that_does_not_answer_leaves_fausts_ends_within_the_wait() -> None:
    # The port takes connections (the kernel's backlog) and never answers: the reader
    # cannot start. Faust's recovery must get its own ends back within the wait, not
    # after the client's own timeouts (40 s and more).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        client = {"bootstrap_servers": f"127.0.0.1:{sock.getsockname()[1]}"}
        tp = TopicPartition("changelog", 0)
        started = time.monotonic()
        got = await reachable_ends(client, {tp: 9}, lambda _: 2, wait_s=1.0)
        waited = time.monotonic() - started
    assert got == {tp: 9}
    assert 1.0 <= waited < 5.0
