"""Making a hanging transaction on purpose: records on a partition the coordinator never heard of.

Kafka's partition verification (KIP-890 part 1) normally refuses a
transactional write to a partition that is not in the producer's
transaction, which is why this switches it off for the broker while it
writes (a dynamic broker setting) and on again after. The producer is told
the partition is already in its transaction, so it sends no
AddPartitionsToTxn: exactly what a partition left open by a lost request
looks like (docs/decisions.md D29 ("Hanging transactions")).
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

VERIFICATION = "transaction.partition.verification.enable"


async def _set_verification(bootstrap: str, enabled: bool, timeout: float = 30.0) -> None:
    """Set partition verification on every broker and wait until each reports it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        wanted = "true" if enabled else "false"
        resources = [
            ConfigResource(ConfigResourceType.BROKER, str(b["node_id"]), {VERIFICATION: wanted})
            for b in cluster["brokers"]
        ]
        await admin.alter_configs(resources)
        deadline = time.monotonic() + timeout
        asked = [ConfigResource(r.resource_type, r.name, {VERIFICATION: None}) for r in resources]
        while True:  # dynamic settings reach the brokers through the metadata log
            responses = await admin.describe_configs(asked)
            values = {
                entry[1]
                for response in responses
                for resource in response.resources
                for entry in resource[4]
            }
            if values == {wanted}:
                return
            assert time.monotonic() < deadline, f"{VERIFICATION} still {values}"
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def hang_transaction(
    bootstrap: str,
    transactional_id: str,
    hanging: TopicPartition,
    records: list[tuple[bytes | None, bytes]],
    committed_elsewhere: TopicPartition | None = None,
    bump_epoch_after: bool = False,
) -> int:
    """Write ``records`` to ``hanging`` in a transaction the coordinator does not know there.

    With ``committed_elsewhere`` the first record also goes to that partition the normal
    way and the transaction is committed: the coordinator records
    CompleteCommit and writes a marker there only. Without it the producer
    just stops (the coordinator's state stays Empty). ``bump_epoch_after``
    then starts and stops one more producer with the same id, so the
    coordinator no longer remembers the hanging epoch. Returns the offset
    the hanging transaction starts at.
    """
    await _set_verification(bootstrap, False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id)
    await producer.start()
    try:
        await producer.begin_transaction()
        if committed_elsewhere is not None:
            key, value = records[0]
            await producer.send_and_wait(
                committed_elsewhere.topic, value, key=key, partition=committed_elsewhere.partition
            )
        producer._txn_manager._txn_partitions.add(hanging)  # no AddPartitionsToTxn for it
        first = None
        for key, value in records:
            meta = await producer.send_and_wait(
                hanging.topic, value, key=key, partition=hanging.partition
            )
            first = meta.offset if first is None else first
        if committed_elsewhere is not None:
            await producer.commit_transaction()
    finally:
        await producer.stop()
        await _set_verification(bootstrap, True)
    if bump_epoch_after:
        again = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id)
        await again.start()
        await again.stop()
    assert first is not None
    return first
