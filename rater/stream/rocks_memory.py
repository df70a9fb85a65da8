"""One memory budget for all of a worker's RocksDB partitions.

faust-streaming 0.15.3 opens every partition's database with a block cache of
its own and keeps the SST files' index and filter blocks outside it, so what
RocksDB may hold grows with the partitions and with the data stored: every
CDR id stays a record for the 35-day duplicate window. Here every partition
shares one LRU cache that also holds the index and filter blocks and is
charged for the memtables (a write buffer manager), so RocksDB's memory has
one fixed cap. It was not what made the benchmark's resident size grow
(docs/benchmark-notes.md, "Why resident memory still grows"); it bounds RocksDB's share for good.
"""

from __future__ import annotations

from typing import Any

import rocksdict
from faust.stores.rocksdb import RocksDBOptions

MEMTABLE_SHARE = 4  # a quarter of the budget may be unflushed writes


class SharedBudgetOptions(RocksDBOptions):
    """Faust's rocksdict options, with one cache and one write buffer manager for every database."""

    def __init__(self, budget_bytes: int, **kwargs: Any) -> None:
        super().__init__(use_rocksdict=True, **kwargs)
        self.budget_bytes = budget_bytes
        self.cache = rocksdict.Cache(budget_bytes)
        self.write_buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            budget_bytes // MEMTABLE_SHARE, False, self.cache
        )

    def as_options(self) -> rocksdict.Options:
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        if self.max_open_files is not None:  # None: the process limit is unknown
            options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_write_buffer_manager(self.write_buffers)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(self.cache)
        table.set_cache_index_and_filter_blocks(True)
        # Level-0 files are read on every miss: their index and filters stay in the cache.
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        return options


def share_one_budget(store: Any, budget_bytes: int) -> None:
    """Make a faust RocksDB store open its partitions under one memory budget.

    Must run before the store opens its first partition (at assignment).
    """
    current: RocksDBOptions = store.rocksdb_options
    store.rocksdb_options = SharedBudgetOptions(
        budget_bytes,
        max_open_files=current.max_open_files,
        write_buffer_size=current.write_buffer_size,
        max_write_buffer_number=current.max_write_buffer_number,
        target_file_size_base=current.target_file_size_base,
        bloom_filter_size=current.bloom_filter_size,
        ttl=current.ttl,
    )
