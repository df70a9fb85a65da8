"""The faust-streaming and aiokafka internals the rater relies on are still there.

The shell overrides or reads private parts of both libraries (docs/decisions.md
names each use); pyproject.toml pins their exact versions. An upgrade that moved
one of these fails here, in a unit test, instead of at run time in a worker.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.consumer.subscription_state import TopicPartitionState
from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.producer.transaction_manager import TransactionManager
from faust.stores.rocksdb import Store
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer, ConsumerThread, ThreadDelegateConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka

PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}


@pytest.mark.parametrize(("package", "pinned"), sorted(PINNED.items()))
def test_the_installed_version_is_the_pinned_one(package: str, pinned: str) -> None:
    assert version(package) == pinned


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        (Consumer, "_drain_messages"),  # BatchConsumer replaces the per-message drain
        (Consumer, "_getmany"),
        (Consumer, "_get_active_partitions"),
        (Consumer, "_to_message"),
        (Consumer, "perform_seek"),
        (ThreadDelegateConsumer, "_new_consumer_thread"),
        (ConsumerThread, "call_thread"),
        (faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer"),
        (faust_aiokafka.AIOKafkaConsumerThread, "_ensure_consumer"),
        (faust_aiokafka.AIOKafkaConsumerThread, "highwaters"),
        (Store, "_db_for_partition"),
        (Store, "persisted_offset"),
        (Store, "offset_key"),
        (TransactionManager, "maybe_add_partition_to_txn"),  # the early AddPartitionsToTxn
        (TransactionManager, "producer_id"),
        (MessageAccumulator, "add_batch"),  # RecordBatches hands whole batches over
        (AIOKafkaProducer, "create_batch"),
        (AIOKafkaProducer, "send_batch"),
    ],
)
def test_every_internal_the_rater_uses_exists(owner: type, name: str) -> None:
    assert hasattr(owner, name), f"{owner.__qualname__}.{name} is gone"


def test_the_instance_attributes_read_directly_are_still_set() -> None:
    producer_init = inspect.getsource(AIOKafkaProducer.__init__)
    assert "self._txn_manager" in producer_init
    consumer_init = inspect.getsource(AIOKafkaConsumer.__init__)
    assert "self._fetch_max_wait_ms" in consumer_init
    assert "self._subscription" in consumer_init
    recovery_init = inspect.getsource(Recovery.__init__)
    assert "self.active_offsets" in recovery_init and "self.standby_offsets" in recovery_init
    accumulator = inspect.getsource(TransactionManager.__init__)
    assert "self._txn_partitions" in accumulator
    # a partition's fetch state, read by BatchConsumer._caught_up
    state_init = inspect.getsource(TopicPartitionState.__init__)
    assert all(f"self.{name} = " in state_init for name in ("lso", "highwater", "timestamp"))
