"""How other Kafka clients place a keyed record, to produce test and load input like them.

The rater's tenants live where the Java client's partitioner (murmur2) puts
their id; SPEC 11 says any partitioner must work. These give the partition
other clients choose for a key, so a test or a benchmark can write input
exactly where those clients would (explicit partitions, any Python producer).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from rater.stream.placement import partition_of

Partitioner = Callable[[bytes, int], int]  # (key, partition count) -> partition


# The Java client's default for a keyed record, and the rater's tenant placement.
java_murmur2: Partitioner = partition_of


def librdkafka_crc32(key: bytes, partitions: int) -> int:
    """librdkafka's default (``consistent_random``) for a keyed record: CRC-32 of the key."""
    return zlib.crc32(key) % partitions


def sarama_fnv1a(key: bytes, partitions: int) -> int:
    """Go sarama's default hash partitioner: 32-bit FNV-1a as int32, remainder made positive.

    sarama computes ``int32(hash) % n`` and negates a negative result; Go's
    remainder truncates toward zero, so that is ``abs(int32(hash)) % n``.
    """
    hashed = 0x811C9DC5
    for byte in key:
        hashed = ((hashed ^ byte) * 0x01000193) & 0xFFFFFFFF
    signed = hashed - (1 << 32) if hashed >= 1 << 31 else hashed
    return abs(signed) % partitions


PARTITIONERS: dict[str, Partitioner] = {
    "murmur2": java_murmur2,
    "crc32": librdkafka_crc32,
    "fnv1a": sarama_fnv1a,
}
