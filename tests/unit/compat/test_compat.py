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
from aiokafka.consumer.subscription_state import TopicPartitionState
from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.producer.transaction_manager import TransactionManager
from faust.stores.rocksdb import Store
from faust.tables import TableManager
from faust.tables.manager import TableManager as _Manager
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer, ConsumerThread, ThreadDelegateConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

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
    # a partition's fetch state, read by BatchConsumer._caught_up (compat.aiokafka.fetch_state)
    state_init = inspect.getsource(TopicPartitionState.__init__)
    assert all(f"self.{name} = " in state_init for name in ("lso", "highwater", "timestamp"))


def test_the_guard_refuses_untested_versions_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(compat.OVERRIDE, raising=False)
    compat.check_versions(dict(compat.TESTED))  # the tested ones pass
    with pytest.raises(compat.UntestedLibrary, match=r"aiokafka 0\.15\.0 \(tested: 0\.14\.0\)"):
        compat.check_versions({**compat.TESTED, "aiokafka": "0.15.0"})
    monkeypatch.setenv(compat.OVERRIDE, "1")  # the operator's knowing choice
    compat.check_versions({**compat.TESTED, "aiokafka": "0.15.0"})


def test_the_guard_and_this_test_agree_with_the_pins() -> None:
    assert compat.TESTED == PINNED


def test_recovery_waits_for_the_record_at_the_end_the_consumer_gives_less_one() -> None:
    """What ReachableEndsConsumer relies on (docs/decisions.md D47): Faust takes the
    recovery ends from ``Consumer.highwaters``, waits for the record at each end - 1, and
    has a slow fallback (two idle 5 s waits) for an end that no record reaches."""
    build = inspect.getsource(Recovery._build_highwaters)
    assert "await consumer.highwaters(*tps)" in build
    assert "value - 1" in build
    assert "self._thread.highwaters(" in inspect.getsource(ThreadDelegateConsumer.highwaters)
    slurp = inspect.getsource(Recovery.__dict__["_slurp_changelogs"].fun)  # a mode ServiceTask
    assert "Aborted tx until highwater" in slurp
    assert "timeout=5.0" in slurp
    assert "self._changelogs = {}" in inspect.getsource(TableManager.__init__)  # the mixin reads it


def test_recovery_is_done_once_each_offset_read_reaches_its_end() -> None:
    app = faust.App("pinned-internals", broker="kafka://127.0.0.1:1")
    recovery = app.tables.recovery
    tp = TP("t-tenants-changelog", 0)
    recovery.active_highwaters.update({tp: 41})  # a moved end of 42: record 41 is the last
    recovery.active_offsets.update({tp: 40})
    assert recovery.need_recovery()
    recovery.active_offsets[tp] = 41
    assert not recovery.need_recovery()


def test_the_table_manager_pause_prompt_table_manager_skips_is_all_it_adds() -> None:
    """PromptTableManager.on_start is Faust's without the 1 s sleep."""
    source = inspect.getsource(TableManager.on_start)
    body = [line.strip() for line in source.splitlines()[2:] if line.strip()]
    assert body == [
        "await self.sleep(1.0)",
        "if not self.should_stop:",
        "await self._update_channels()",
        "await self.recovery.start()",
    ]
