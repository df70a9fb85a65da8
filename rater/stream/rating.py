"""A batch applied in memory: merged by time, rated by the core, its changed states encoded.

No Kafka here: :mod:`rater.stream.partition` decides what to rate (the
applied-offsets marker, misplaced records) and commits what comes out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rater.core import dlq_record
from rater.core.codec import encode_state
from rater.core.errors import INTERNAL_ERROR, NO_TARIFF
from rater.core.outputs import Output
from rater.core.processor import Processor
from rater.core.state import StoredSeenIds
from rater.core.topics import RATER_DLQ
from rater.stream.store import seen_prefix

log = logging.getLogger(__name__)

# A record that crashed the core, by (topic, offset): replayed as an internal_error.
Poisoned = dict[tuple[str, int], str]


def in_time_order(batch: dict[Any, list[Any]], events_topic: str) -> list[tuple[Any, Any]]:
    """A batch's records of both input topics, merged by record timestamp.

    Kafka orders each partition, not the two topics against each other; the
    producers' timestamps are the best order there is. On a tie account
    events go first, so an account opened with its first CDR is there for it.
    Each topic's own order is kept (the sort is stable).
    """
    merged = [(tp, record) for tp, records in batch.items() for record in records]
    if len(batch) > 1:
        merged.sort(key=lambda item: (item[1].timestamp, item[0].topic != events_topic))
    return merged


def rate(
    processor: Processor,
    records: Iterable[tuple[Any, Any]],
    poisoned: Poisoned,
    now: int,
    cdrs_topic: str,
) -> tuple[list[Output], tuple[tuple[str, int], str] | None, bool]:
    """Apply records in memory: their outputs, the message that crashed, whether any no_tariff.

    A crash stops here: the caller replays the batch from committed state
    with that message poisoned, so a bug in one message never stops a partition.
    """
    emitted: list[Output] = []
    no_tariff = False
    for tp, record in records:
        topic = tp.topic
        apply = processor.cdr if topic == cdrs_topic else processor.account_event
        where = (topic, record.offset)
        if where in poisoned:
            emitted.append(
                dlq_record.record(
                    topic,
                    tp.partition,
                    record.offset,
                    record.key,
                    record.value,
                    INTERNAL_ERROR,
                    poisoned[where],
                    None,
                )
            )
            continue
        try:
            result = apply(record.key, record.value, topic, tp.partition, record.offset, now)
        except Exception as exc:  # a bug must not stop the partition
            log.exception("failed on %s:%s:%s", topic, tp.partition, record.offset)
            return emitted, (where, f"{type(exc).__name__}: {exc}"), no_tariff
        if result and result[0][0] == RATER_DLQ:
            no_tariff = no_tariff or result[0][2]["error"]["code"] == NO_TARIFF
        emitted.extend(result)
    return emitted, None, no_tariff


def changed_records(
    processor: Processor,
) -> tuple[dict[bytes, bytes | None], list[StoredSeenIds]]:
    """The changelog records of the batch's changed tenants: states, new and pruned ids."""
    encoded: dict[bytes, bytes | None] = {}
    journals = []
    states = processor.states
    for tenant in processor.take_dirty():
        state = states[tenant]
        key = tenant.encode()
        encoded[key] = encode_state(state)
        seen = state.seen
        if isinstance(seen, StoredSeenIds) and (seen.added or seen.removed):
            prefix = seen_prefix(key)
            for seen_key, at in seen.added.items():
                encoded[prefix + seen_key.encode()] = b"%d" % at
            for seen_key in seen.removed:
                encoded[prefix + seen_key.encode()] = None
            journals.append(seen)
    return encoded, journals
