"""How a worker's partitions are doing: back-off after failed batches, and committed counts.

A failed batch drops the partition's producer and waits before the next try,
longer while it keeps failing; a partition failing :data:`FAILING_AFTER`
times in a row makes ``/ready`` answer 503 (docs/decisions.md D31 ("Fenced producers")).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from aiokafka.errors import InvalidProducerEpoch, ProducerFenced

from rater.core.outputs import Output

RETRY_FIRST_S = 0.1  # back-off before a failed partition's next batch, doubled per failure
RETRY_MAX_S = 5.0
FAILING_AFTER = 3  # consecutive failures after which the worker reports itself not ready
# A fenced producer usually means another worker owns the partition now: wait past two
# heartbeats (1 s) for the rebalance to say so before starting a producer that would fence it.
FENCED_WAIT_S = 3.0
FENCED = (ProducerFenced, InvalidProducerEpoch)


def wall_clock_us() -> int:
    return time.time_ns() // 1000


@dataclass
class Failing:
    """A partition whose batches keep failing: when it may be tried again, and why."""

    count: int
    since_us: int
    retry_at: float
    error: str


@dataclass
class Counters:
    """What this worker has committed since it started: the web views' figures."""

    inputs: int = 0
    batches: int = 0
    outputs: Counter[str] = field(default_factory=Counter)
    last_commit_us: int | None = None
    failed_batches: int = 0
    renewed_producers: int = 0

    def committed(self, inputs: int, emitted: list[Output]) -> None:
        self.inputs += inputs
        self.batches += 1
        self.outputs.update(topic for topic, _, _ in emitted)
        self.last_commit_us = wall_clock_us()
