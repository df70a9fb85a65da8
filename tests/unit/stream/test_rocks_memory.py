"""The tenant table's RocksDB partitions share one memory budget (rater.stream.rocks_memory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rater.config import Settings, SettingsError
from rater.stream.app import build_app
from rater.stream.rocks_memory import SharedBudgetOptions

BUDGET = 4 << 20
IDS = 60_000  # ~2.4 MB of keys and values per database: more than the cap in all


def seen_key(n: int) -> bytes:
    return b"\xff\x00\x02t1c:%08d-0000-4000-8000-000000000000" % n


def test_two_databases_stay_under_one_cap_and_read_back_everything(tmp_path: Path) -> None:
    options = SharedBudgetOptions(BUDGET, write_buffer_size=1 << 20, max_write_buffer_number=2)
    dbs = [options.open(tmp_path / f"p{i}") for i in range(2)]
    try:
        for i, db in enumerate(dbs):
            for n in range(IDS):
                db[seen_key(n)] = b"%d" % (n * 7 + i)
        assert options.write_buffers.get_usage() > 0  # unflushed memtables are charged
        for db in dbs:
            db.flush()
        for i, db in enumerate(dbs):
            assert [db[seen_key(n)] for n in range(0, IDS, 13)] == [
                b"%d" % (n * 7 + i) for n in range(0, IDS, 13)
            ]
            assert db.get(seen_key(IDS)) is None
        usages = {db.property_int_value("rocksdb.block-cache-usage") for db in dbs}
        assert len(usages) == 1  # one cache, seen from both databases
        assert 0 < options.cache.get_usage() <= BUDGET
    finally:
        for db in dbs:
            db.close()


def test_the_worker_table_opens_its_partitions_under_the_configured_budget(
    tmp_path: Path,
) -> None:
    app, _ = build_app(Settings(data_dir=tmp_path, rocksdb_memory_mb=3, web_port=0))
    [table] = app.tables.values()
    options = table.data.rocksdb_options
    assert isinstance(options, SharedBudgetOptions)
    assert options.budget_bytes == 3 << 20
    assert options.write_buffer_size == 2 << 20  # the table's own options are kept


def test_the_budget_comes_from_the_environment() -> None:
    assert Settings.from_env({}).rocksdb_memory_mb == 64
    assert Settings.from_env({"RATER_ROCKSDB_MEMORY_MB": "256"}).rocksdb_memory_mb == 256
    with pytest.raises(SettingsError, match="RATER_ROCKSDB_MEMORY_MB='0'"):
        Settings.from_env({"RATER_ROCKSDB_MEMORY_MB": "0"})
