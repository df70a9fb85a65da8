"""The worker's Prometheus metrics (SPEC 11), in one registry per worker.

Counters count committed work only: the stream shell calls
:meth:`RaterMetrics.inputs_committed` and :meth:`RaterMetrics.outputs_committed`
right after a batch's transaction committed (where it updates its own
``Counters``), so an aborted batch counts nothing and the counters agree with
what a ``read_committed`` consumer finds on the output topics. Gauges that
describe the worker now (lag, owned partitions, blocked tenants) are read at
scrape time through :class:`~rater.observability.status.WorkerStatus`, off
the batch path. Topic labels are the SPEC's names, without the deployment's
prefix, so dashboards do not change with it (docs/decisions.md D35 ("Operator
interfaces")).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rater.core.errors import CODES
from rater.core.outputs import Output
from rater.core.topics import OUTPUT_TOPICS, RATED_CDRS, RATER_DLQ, SERVICE_STATE, TENANT_INPUTS
from rater.observability.status import WorkerStatus

# A batch takes a few ms to a few s (a large catch-up batch on a loaded machine).
_topic_of = itemgetter(0)  # of an Output
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RaterMetrics:
    """Counters fed by the commit path, gauges read from the worker at scrape time."""

    def __init__(self, topic_prefix: str = "") -> None:
        self.prefix = topic_prefix
        self.registry = CollectorRegistry()
        self.status: WorkerStatus | None = None
        registry = self.registry
        self.inputs = Counter(
            "rater_input_records",
            "Input records applied by committed batches, per input topic.",
            ["topic"],
            registry=registry,
        )
        self.cdrs_rated = Counter(
            "rater_cdrs_rated", "CDRs rated by committed batches.", registry=registry
        )
        self.dlq = Counter(
            "rater_dlq_records",
            "Records written to rater-dlq by committed batches, per error code.",
            ["code"],
            registry=registry,
        )
        self.outputs = Counter(
            "rater_output_records",
            "Records written by committed batches, per output topic.",
            ["topic"],
            registry=registry,
        )
        self.failed_batches = Counter(
            "rater_failed_batches",
            "Batches that failed and were retried from committed state with a new producer.",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "rater_batch_seconds",
            "Time to rate and commit one partition's batch (committed batches only).",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        # Every series exists from the start (at 0), so a rate() over a fresh worker works.
        self._inputs = {topic: self.inputs.labels(topic) for topic in TENANT_INPUTS}
        self._outputs = {topic: self.outputs.labels(topic) for topic in OUTPUT_TOPICS}
        self._dlq = {code: self.dlq.labels(code) for code in CODES}
        self._blocked: dict[int, set[str]] = {}  # per counted partition: its blocked tenants
        registry.register(_WorkerGauges(self))

    def attach(self, status: WorkerStatus) -> None:
        """The worker the scrape-time gauges describe."""
        self.status = status

    # --- the commit path: cheap, one pass over what was committed ----------------------

    def inputs_committed(
        self, partition: int, batch: Mapping[Any, Sequence[Any]], seconds: float
    ) -> None:
        """A batch committed: its input records per topic and how long it took."""
        cut = len(self.prefix)
        for tp, records in batch.items():
            topic = tp.topic[cut:]
            counter = self._inputs.get(topic)
            if counter is None:
                counter = self._inputs[topic] = self.inputs.labels(topic)
            counter.inc(len(records))
        self.batch_seconds.observe(seconds)

    def outputs_committed(self, partition: int, emitted: Iterable[Output]) -> None:
        """A transaction committed these outputs (a batch's or a sweep's)."""
        emitted = emitted if isinstance(emitted, list) else list(emitted)
        counts = Tally(map(_topic_of, emitted))  # half the time of a generator (C loop)
        for topic, count in counts.items():
            self._outputs[topic].inc(count)
        rated = counts.get(RATED_CDRS)
        if rated:
            self.cdrs_rated.inc(rated)
        if counts.get(RATER_DLQ):
            codes = Tally(
                value["error"]["code"] for topic, _, value in emitted if topic == RATER_DLQ
            )
            for code, count in codes.items():
                counter = self._dlq.get(code)
                if counter is None:
                    counter = self._dlq[code] = self.dlq.labels(code)
                counter.inc(count)
        blocked = self._blocked.get(partition)
        if blocked is not None and counts.get(SERVICE_STATE):
            for topic, _, value in emitted:
                if topic == SERVICE_STATE:
                    if value["blocked"]:
                        blocked.add(value["tenant_id"])
                    else:
                        blocked.discard(value["tenant_id"])

    def forget(self) -> None:
        """Partitions were revoked: blocked tenants are counted afresh once owned again."""
        self._blocked.clear()

    # --- scrape time ------------------------------------------------------------------

    def blocked_tenants(self, owned: Sequence[int]) -> int:
        """Blocked tenants of the owned partitions, each partition scanned once when it is
        first counted and then kept up to date from committed service-state records."""
        status = self.status
        for partition in list(self._blocked):
            if partition not in owned:
                del self._blocked[partition]
        total = 0
        for partition in owned:
            blocked = self._blocked.get(partition)
            if blocked is None:
                if status is None or status.not_serving(partition) is not None:
                    continue  # restoring: counted once its state is there
                blocked = self._blocked[partition] = {
                    state.tenant_id for state in status.tenant_states(partition) if state.blocked
                }
            total += len(blocked)
        return total

    def render(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


class _WorkerGauges(Collector):
    """Gauges read from the worker when scraped: lag, owned partitions, blocked tenants."""

    def __init__(self, metrics: RaterMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterator[Metric]:
        yield from self._families({}, [], 0)

    def collect(self) -> Iterator[Metric]:
        status = self.metrics.status
        if status is None:
            yield from self._families({}, [], 0)
            return
        owned = status.owned_partitions()
        lag = status.input_lag()
        yield from self._families(lag, owned, self.metrics.blocked_tenants(owned))
        yield GaugeMetricFamily(
            "rater_failing_partitions",
            "Owned partitions whose batches failed three or more times in a row.",
            value=status.failing_partitions(),
        )

    @staticmethod
    def _families(
        lag: dict[tuple[str, int], int], owned: list[int], blocked: int
    ) -> Iterator[Metric]:
        lag_family = GaugeMetricFamily(
            "rater_consumer_lag_records",
            "Records on an owned input partition not yet applied (end offset minus next).",
            labels=["topic", "partition"],
        )
        for (topic, partition), records in sorted(lag.items()):
            lag_family.add_metric([topic, str(partition)], records)
        yield lag_family
        yield GaugeMetricFamily(
            "rater_owned_partitions",
            "Input partitions this worker owns (with a transactional producer).",
            value=len(owned),
        )
        yield GaugeMetricFamily(
            "rater_blocked_tenants",
            "Tenants of this worker's partitions whose calling is blocked (SPEC 6.6).",
            value=blocked,
        )
