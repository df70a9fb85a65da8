"""The worker gives freed heap memory back to the system (rater.stream.heap_trim)."""

from __future__ import annotations

import ctypes
import ctypes.util

from rater.stream.heap_trim import heap_trimmer

BLOCK = 1024  # below malloc's mmap threshold: from the heap, kept after free
BLOCKS = 100_000  # ~100 MiB


def resident_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_freed_heap_memory_leaves_the_resident_size_once_trimmed() -> None:
    trim = heap_trimmer()
    assert trim is not None  # every CI and worker machine is glibc Linux
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    blocks = [libc.malloc(BLOCK) for _ in range(BLOCKS)]
    for block in blocks:
        libc.memset(block, 1, BLOCK)  # touched: resident
    pin = libc.malloc(BLOCK)  # keeps the heap's top in use, so free alone cannot shrink it
    try:
        for block in blocks:
            libc.free(block)
        before = resident_kib()
        trim()
        after = resident_kib()
        assert before - after > BLOCKS * BLOCK // 1024 // 2
    finally:
        libc.free(pin)
