"""Giving the heap memory a batch freed back to the system, every few seconds.

glibc's malloc keeps freed memory for reuse, in one arena per thread that
allocated it (Python, aiokafka's buffers, RocksDB's flush and compaction
threads). During a benchmark drain that freed-but-kept memory grew from 10
to 40 MiB of the worker's resident size (docs/benchmark-notes.md, resident
memory). ``malloc_trim(0)`` returns the free pages of every arena; it takes
1 to 4 ms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

TRIM_INTERVAL_S = 2.0


def heap_trimmer() -> Callable[[], object] | None:
    """``malloc_trim(0)`` of this process's C library, or None where there is none (not glibc)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)
