"""The faust-streaming and aiokafka internals the rater relies on are still there.

The shell reads private parts of both libraries only through ``rater/compat``
and overrides a few private methods (its docstring names them);
pyproject.toml pins their exact versions. An upgrade that moved one of these
fails here, in a unit test, instead of at run time in a worker.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import faust
import pytest
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.producer.transaction_manager import TransactionManager
from faust.stores.rocksdb import Store
from faust.tables import TableManager
from faust.tables.manager import TableManager as _Manager
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer, ConsumerThread, ThreadDelegateConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka

import rater.compat as compat

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
        (AIOKafkaClient, "fetch_all_metadata"),  # compat.aiokafka.refresh_metadata
        (AIOKafkaClient, "force_metadata_update"),  # compat.aiokafka.update_metadata
        (TableManager, "_update_channels"),  # compat.faust.open_table_channels
        (faust.App, "_new_transport"),  # RaterApp
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
    assert "self._client" in consumer_init and "self._coordinator" in consumer_init
    assert "self._changelogs" in inspect.getsource(_Manager.__init__)
    recovery_init = inspect.getsource(Recovery.__init__)
    assert "self.active_offsets" in recovery_init and "self.standby_offsets" in recovery_init
    accumulator = inspect.getsource(TransactionManager.__init__)
    assert "self._txn_partitions" in accumulator


def test_the_guard_refuses_untested_versions_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(compat.OVERRIDE, raising=False)
    compat.check_versions(dict(compat.TESTED))  # the tested ones pass
    with pytest.raises(compat.UntestedLibrary, match=r"aiokafka 0\.15\.0 \(tested: 0\.14\.0\)"):
        compat.check_versions({**compat.TESTED, "aiokafka": "0.15.0"})
    monkeypatch.setenv(compat.OVERRIDE, "1")  # the operator's knowing choice
    compat.check_versions({**compat.TESTED, "aiokafka": "0.15.0"})


def test_the_guard_and_this_test_agree_with_the_pins() -> None:
    assert compat.TESTED == PINNED
