"""Transactions on the real broker: what the rater's exactly-once design relies on.

Each check has a counterpart that shows the opposite outcome is observable (aborted
records ARE in the log for read_uncommitted), so a broken broker or client makes it fail.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from rater.devkit.localkafka.admin import TopicFactory
from rater.devkit.localkafka.readback import read_all
from rater.stream.consumer import stable_ends

pytestmark = pytest.mark.integration


def _producer(bootstrap: str, transactional_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id)


def _values(records: list) -> list[bytes]:
    return [r.value for r in records]


async def _read_until(
    bootstrap: str, topic: str, isolation: str, expected: list[bytes], timeout: float = 30.0
) -> list[bytes]:
    """Read the topic until its values are ``expected``; fail with the last read at the deadline.

    A transaction's records become visible to read_committed once the
    coordinator has written its markers, a moment after commit returns: reading
    once right after the commit may see an older stable offset.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        values = _values(await read_all(bootstrap, topic, isolation))
        if values == expected or loop.time() >= deadline:
            assert values == expected
            return values
        await asyncio.sleep(0.1)  # poll interval; the loop exits on the value above


async def test_committed_transaction_is_read_back(
    kafka_bootstrap: str, topic_factory: TopicFactory, unique_prefix: str
) -> None:
    topic = await topic_factory.create("committed", partitions=3)
    sent = [f"v{i}".encode() for i in range(30)]
    async with (
        _producer(kafka_bootstrap, unique_prefix + "p") as producer,
        producer.transaction(),
    ):
        for i, value in enumerate(sent):
            await producer.send(topic, value, key=f"k{i % 7}".encode())

    # read_all gives partition by partition: the values in that order
    records = await read_all(kafka_bootstrap, topic, "read_uncommitted")
    in_log = _values(records)
    assert sorted(in_log) == sorted(sent)
    assert len({r.partition for r in records}) > 1  # keys really spread over partitions
    await _read_until(kafka_bootstrap, topic, "read_committed", in_log)


async def test_aborted_transaction_stays_invisible_to_read_committed(
    kafka_bootstrap: str, topic_factory: TopicFactory, unique_prefix: str
) -> None:
    topic = await topic_factory.create("aborted", partitions=1)
    async with _producer(kafka_bootstrap, unique_prefix + "p") as producer:
        async with producer.transaction():
            await producer.send(topic, b"before")
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted-1")
        await producer.send_and_wait(topic, b"aborted-2")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"after")

    await _read_until(kafka_bootstrap, topic, "read_committed", [b"before", b"after"])
    uncommitted = await read_all(kafka_bootstrap, topic, "read_uncommitted")
    assert _values(uncommitted) == [b"before", b"aborted-1", b"aborted-2", b"after"]


async def test_open_transaction_blocks_read_committed_until_commit(
    kafka_bootstrap: str, topic_factory: TopicFactory, unique_prefix: str
) -> None:
    topic = await topic_factory.create("open", partitions=1)
    async with _producer(kafka_bootstrap, unique_prefix + "p") as producer:
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"pending")

        assert _values(await read_all(kafka_bootstrap, topic, "read_committed")) == []
        assert _values(await read_all(kafka_bootstrap, topic, "read_uncommitted")) == [b"pending"]

        await producer.commit_transaction()

    await _read_until(kafka_bootstrap, topic, "read_committed", [b"pending"])


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "abort"])
async def test_consumer_offsets_commit_and_abort_with_the_transaction(
    kafka_bootstrap: str, topic_factory: TopicFactory, unique_prefix: str, commit: bool
) -> None:
    """Consume-transform-produce, as Faust's exactly_once does per partition."""
    source = await topic_factory.create("source", partitions=1)
    sink = await topic_factory.create("sink", partitions=1)
    group = unique_prefix + "group"
    tp = TopicPartition(source, 0)
    async with (
        _producer(kafka_bootstrap, unique_prefix + "seed") as seeder,
        seeder.transaction(),
    ):
        for i in range(5):
            await seeder.send(source, f"in{i}".encode())

    async with (
        AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            isolation_level="read_committed",
        ) as consumer,
        _producer(kafka_bootstrap, unique_prefix + "worker") as producer,
    ):
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        consumed = []
        while len(consumed) < 5:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            consumed.extend(batch.get(tp, []))
        await producer.begin_transaction()
        for record in consumed:
            await producer.send(sink, record.value.replace(b"in", b"out"))
        await producer.send_offsets_to_transaction({tp: consumed[-1].offset + 1}, group)
        if commit:
            await producer.commit_transaction()
        else:
            await producer.abort_transaction()
        # Offsets of a transaction become visible once its markers are written, after
        # commit/abort returns. A later transaction of the same producer starts only once
        # the earlier one is complete, so a committed marker offset on another partition
        # proves the first transaction's outcome is final.
        marker = TopicPartition(sink, 0)
        async with producer.transaction():
            await producer.send_offsets_to_transaction({marker: 1}, group)
        await _until(lambda: consumer.committed(marker), 1)
        committed_offset = await consumer.committed(tp)

    out = _values(await read_all(kafka_bootstrap, sink, "read_committed"))
    if commit:
        assert out == [f"out{i}".encode() for i in range(5)]
        assert committed_offset == consumed[-1].offset + 1
    else:
        assert out == []
        assert committed_offset is None


async def _until(probe, expected, timeout: float = 20.0):
    """Poll an async probe until it returns ``expected``; fail with the last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    value = await probe()
    while value != expected and loop.time() < deadline:
        await asyncio.sleep(0.1)  # poll interval, not synchronisation: the loop checks the value
        value = await probe()
    assert value == expected
    return value


async def _end_offset(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    return (await consumer.end_offsets([tp]))[tp]


async def test_new_producer_with_same_transactional_id_fences_the_old_one(
    kafka_bootstrap: str, topic_factory: TopicFactory, unique_prefix: str
) -> None:
    """A restarted worker must fence its zombie: the zombie's open transaction is aborted."""
    topic = await topic_factory.create("fenced", partitions=1)
    tid = unique_prefix + "shared-id"
    zombie = _producer(kafka_bootstrap, tid)
    await zombie.start()
    try:
        await zombie.begin_transaction()
        await zombie.send_and_wait(topic, b"zombie")
        async with _producer(kafka_bootstrap, tid) as successor:
            async with successor.transaction():
                await successor.send(topic, b"successor")
            with pytest.raises(KafkaError):
                await zombie.commit_transaction()
    finally:
        await zombie.stop()

    await _read_until(kafka_bootstrap, topic, "read_committed", [b"successor"])
    assert b"zombie" in _values(await read_all(kafka_bootstrap, topic, "read_uncommitted"))


async def test_topic_factory_names_are_unique_and_creation_errors_surface(
    kafka_bootstrap: str, topic_factory: TopicFactory, unique_prefix: str
) -> None:
    topic = await topic_factory.create(
        "compacted", partitions=2, config={"cleanup.policy": "compact"}
    )

    assert topic == f"{unique_prefix}compacted"
    with pytest.raises(TopicAlreadyExistsError):
        await topic_factory.create("compacted")


async def test_read_committed_end_offsets_give_the_stable_offset_before_any_fetch(
    kafka_bootstrap: str, topic_factory: TopicFactory, unique_prefix: str
) -> None:
    """What `StableOffsetsConsumerThread` relies on so table recovery never starts empty.

    The fetcher's `last_stable_offset()` is None until a fetch answered; the
    ListOffsets request of a read_committed consumer answers at once, and stops
    at a transaction still open.
    """
    topic = await topic_factory.create("lso", partitions=1)
    tp = TopicPartition(topic, 0)
    async with _producer(kafka_bootstrap, unique_prefix + "p") as producer:
        async with producer.transaction():
            for value in (b"a", b"b", b"c"):
                await producer.send(topic, value)
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"open")  # offset 4, after the commit marker
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap, isolation_level="read_committed",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            assert consumer.last_stable_offset(tp) is None  # what faust used: unknown yet
            assert (await consumer.end_offsets([tp]))[tp] == 4
            await producer.commit_transaction()
            # record + marker; the coordinator writes markers just after EndTxn returns
            await _until(lambda: _end_offset(consumer, tp), 6)
        finally:
            await consumer.stop()


async def test_stable_ends_wait_for_a_transaction_written_locally_to_become_stable(
    kafka_bootstrap: str, topic_factory: TopicFactory, unique_prefix: str
) -> None:
    """`stable_ends` (table recovery's highwaters): never below what the local table holds.

    A worker writes its table right after `commit_transaction` returns; the
    stable offset passes those records only once the markers are written.
    Here the records sit in a transaction still open, so the stable offset is
    stuck before them: the call keeps asking until the commit, or gives up
    after its wait with the offset as it is.
    """
    topic = await topic_factory.create("stable", partitions=1)
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    asked: list[int] = []

    async def ask(tps: list) -> dict:
        ends = await consumer.end_offsets(tps)
        asked.append(ends[tp])
        return ends

    try:
        async with _producer(kafka_bootstrap, unique_prefix + "p") as producer:
            await producer.begin_transaction()
            for value in (b"a", b"b", b"c"):
                await producer.send_and_wait(topic, value)  # offsets 0-2, not yet stable
            gave_up = await stable_ends(ask, [tp], written=lambda _: 2, wait_s=0.3)
            assert gave_up == {tp: 0}  # Faust then reports the table as ahead: a real error
            assert len(asked) > 1

            waiting = asyncio.ensure_future(stable_ends(ask, [tp], written=lambda _: 2))
            await producer.commit_transaction()
            assert await waiting == {tp: 4}  # three records and the commit marker
            assert await stable_ends(ask, [tp], written=lambda _: -1) == {tp: 4}
    finally:
        await consumer.stop()
