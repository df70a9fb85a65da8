"""Knowing that a batch's transaction is complete on every partition it wrote.

A commit that aiokafka reports as done only says the coordinator accepted
EndTxn. The markers that make the records readable are written afterwards,
one per partition the coordinator has in the transaction; a partition whose
records reached its leader without the coordinator knowing of it (seen on a
broker restart, docs/decisions.md D29 ("Hanging transactions")) stays open for
good: every ``read_committed`` reader of it stops there, and a worker that
took the next batch would pile its records up behind it.

So a worker moves on from a batch only once the last stable offset (LSO) of
every partition it wrote has passed its records (:meth:`TransactionAdmin.settle`).
A partition still open after ``stuck_after_s`` is looked at with the requests
of KIP-664: an open transaction of the worker's own producer that began with
this batch's records is ended with the marker the coordinator should have
written (COMMIT: the batch was committed everywhere else); anything else is
refused with one line naming the partition and Kafka's command that ends it.

The same requests repair what a crashed or restarted worker left behind
(:meth:`TransactionAdmin.repair_owned`), before the partition's state is
recovered from its changelog.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.offset import OffsetRequest

from rater.stream.txn_protocol import (
    DescribeProducersRequest,
    DescribeTransactionsRequest,
    WriteTxnMarkersRequest,
)

log = logging.getLogger(__name__)

READ_UNCOMMITTED, READ_COMMITTED = 0, 1
LATEST = -1
STUCK_AFTER_S = 10.0  # markers take milliseconds; ten seconds open is a hang, not a delay
UNREACHABLE_LOG_S = 5.0
FIRST_POLL_S = 0.001
MAX_POLL_S = 0.05
METADATA_WAIT_S = 30.0


@dataclass(frozen=True)
class OpenTransaction:
    """A producer with a transaction open on one partition (DescribeProducers)."""

    tp: TopicPartition
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int
    start_offset: int


@dataclass(frozen=True)
class CoordinatorView:
    """What the transaction coordinator says of a transactional id (DescribeTransactions)."""

    state: str  # Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, ...
    producer_id: int
    producer_epoch: int


class HangingTransaction(RuntimeError):
    """A partition the worker writes is held by a transaction it cannot safely end."""

    def __init__(self, txn: OpenTransaction, bootstrap: str, why: str) -> None:
        self.txn = txn
        super().__init__(
            f"partition {txn.tp.topic}-{txn.tp.partition} has a transaction open since offset "
            f"{txn.start_offset} (producer {txn.producer_id}, epoch {txn.producer_epoch}) that "
            f"the rater does not end ({why}); end it with: kafka-transactions.sh "
            f"--bootstrap-server {bootstrap} abort --topic {txn.tp.topic} "
            f"--partition {txn.tp.partition} --start-offset {txn.start_offset}"
        )


class TransactionAdmin:
    """LSOs, open transactions and markers, over one client's connections."""

    def __init__(
        self, client: AIOKafkaClient, bootstrap: str, client_kwargs: dict[str, Any] | None = None
    ) -> None:
        self.client = client
        self.bootstrap = bootstrap
        self.client_kwargs = client_kwargs or {}

    async def visible(
        self, tp: TopicPartition, span: tuple[int, int], wait_s: float = STUCK_AFTER_S
    ) -> bool:
        """Whether records ``span`` of ``tp`` were committed, once their transaction ended.

        Raises TimeoutError while the transaction is still open after ``wait_s``:
        its outcome is not known yet. A ``read_committed`` fetch from the first
        record skips aborted records, so a record within the span comes back
        only if the transaction that wrote it committed.
        """
        first, last = span
        deadline = time.monotonic() + wait_s
        while (stable := (await self.offsets([tp]))[tp]) <= last:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{tp.topic}-{tp.partition} still open at {stable}")
            await asyncio.sleep(MAX_POLL_S)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
            **self.client_kwargs,
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, first)
            while await consumer.position(tp) < stable:
                fetched = await consumer.getmany(tp, timeout_ms=500)
                for record in fetched.get(tp, []):
                    return record.offset <= last
                if time.monotonic() >= deadline + wait_s:
                    raise TimeoutError(f"{tp.topic}-{tp.partition} not readable from {first}")
            return False
        finally:
            await consumer.stop()

    async def _leaders(
        self, tps: Iterable[TopicPartition], wait_s: float = METADATA_WAIT_S
    ) -> dict[int, list[TopicPartition]]:
        by_leader: dict[int, list[TopicPartition]] = {}
        deadline = time.monotonic() + wait_s
        for tp in tps:
            leader = self.client.cluster.leader_for_partition(tp)
            while leader is None or leader < 0:  # a topic this client has not asked about yet
                if time.monotonic() >= deadline:
                    raise KafkaError(f"no leader for {tp.topic}-{tp.partition}")
                await self.client.add_topic(tp.topic)
                await self.client.force_metadata_update()
                leader = self.client.cluster.leader_for_partition(tp)
                if leader is None or leader < 0:
                    await asyncio.sleep(MAX_POLL_S)
            by_leader.setdefault(leader, []).append(tp)
        return by_leader

    async def offsets(
        self, tps: Iterable[TopicPartition], isolation: int = READ_COMMITTED
    ) -> dict[TopicPartition, int]:
        """The last stable offsets (``READ_COMMITTED``) or log ends of ``tps``."""
        found: dict[TopicPartition, int] = {}
        for leader, group in (await self._leaders(tps)).items():
            topics: dict[str, list[tuple[int, int]]] = {}
            for tp in group:
                topics.setdefault(tp.topic, []).append((tp.partition, LATEST))
            response = await self.client.send(
                leader, OffsetRequest(-1, isolation, list(topics.items()))
            )
            for topic, partitions in response.topics:
                for partition, error_code, *info in partitions:
                    if error_code:
                        raise for_code(error_code)(f"ListOffsets {topic}-{partition}")
                    found[TopicPartition(topic, partition)] = info[-1]  # ..., offset
        return found

    async def open_transactions(self, tp: TopicPartition) -> list[OpenTransaction]:
        leader = next(iter(await self._leaders([tp])))
        response = await self.client.send(leader, DescribeProducersRequest(tp.topic, tp.partition))
        found = []
        for _name, partitions, _ in response.topics:
            for _index, error_code, message, producers, _ in partitions:
                if error_code:
                    raise for_code(error_code)(f"DescribeProducers {tp}: {message}")
                for pid, epoch, _seq, _ts, coordinator_epoch, start, _ in producers:
                    if start >= 0:
                        found.append(OpenTransaction(tp, pid, epoch, coordinator_epoch, start))
        return found

    async def end(self, txn: OpenTransaction, commit: bool) -> None:
        """Write the marker the coordinator did not write (KIP-664's abort, or a commit)."""
        leader = next(iter(await self._leaders([txn.tp])))
        request = WriteTxnMarkersRequest(
            txn.tp.topic,
            txn.tp.partition,
            txn.producer_id,
            txn.producer_epoch,
            txn.coordinator_epoch,
            commit,
        )
        response = await self.client.send(leader, request)
        for _pid, topics, _ in response.markers:
            for _name, partitions, _ in topics:
                for _index, error_code, _ in partitions:
                    if error_code:
                        raise for_code(error_code)(f"WriteTxnMarkers {txn.tp}")
        log.warning(
            "ended a hanging transaction on %s-%d from offset %d with %s",
            txn.tp.topic,
            txn.tp.partition,
            txn.start_offset,
            "COMMIT" if commit else "ABORT",
        )

    async def coordinator_view(self, transactional_id: str) -> CoordinatorView | None:
        """The coordinator's state of ``transactional_id``; None if it has none."""
        node = await self.client.coordinator_lookup(CoordinationType.TRANSACTION, transactional_id)
        response = await self.client.send(node, DescribeTransactionsRequest(transactional_id))
        for (
            error_code,
            _tid,
            state,
            _timeout,
            _start,
            pid,
            epoch,
            _topics,
            _,
        ) in response.transaction_states:
            if error_code:
                return None  # TRANSACTIONAL_ID_NOT_FOUND: never used
            return CoordinatorView(state, pid, epoch)
        return None

    async def settle(
        self,
        written: Mapping[TopicPartition, tuple[int, int]],
        producer_id: int,
        stuck_after_s: float = STUCK_AFTER_S,
    ) -> None:
        """Return once every partition's LSO is past the last of its ``(first, last)`` offsets.

        While the broker does not answer this waits (there is nothing else a
        committed batch can do); a partition that answers but stays open for
        ``stuck_after_s`` is completed as the rest of the batch was committed,
        or refused (:class:`HangingTransaction`).
        """
        pending = dict(written)
        delay = FIRST_POLL_S
        stuck_since: float | None = None
        unreachable_logged = 0.0
        while pending:
            try:
                stable = await self.offsets(pending)
            except KafkaError as exc:
                now = time.monotonic()
                if now - unreachable_logged > UNREACHABLE_LOG_S:
                    unreachable_logged = now
                    log.warning("waiting for stable offsets of a committed batch: %r", exc)
                await asyncio.sleep(MAX_POLL_S * 4)
                continue
            pending = {tp: span for tp, span in pending.items() if stable.get(tp, -1) <= span[1]}
            if not pending:
                return
            now = time.monotonic()
            stuck_since = stuck_since or now
            if now - stuck_since >= stuck_after_s:
                await self._complete_committed(pending, producer_id)
                stuck_since = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_POLL_S)

    async def _complete_committed(
        self, stuck: Mapping[TopicPartition, tuple[int, int]], producer_id: int
    ) -> None:
        """Commit the open share of a committed batch on each stuck partition (or refuse)."""
        for tp, (first, _last) in stuck.items():
            for txn in await self.open_transactions(tp):
                if txn.producer_id != producer_id:
                    raise HangingTransaction(txn, self.bootstrap, "another producer's")
                if txn.start_offset < first:
                    raise HangingTransaction(
                        txn, self.bootstrap, "it began before this batch's records"
                    )
                await self.end(txn, commit=True)

    async def repair_owned(
        self,
        transactional_id: str,
        before: CoordinatorView | None,
        tps: Iterable[TopicPartition],
        wait_s: float = STUCK_AFTER_S,
    ) -> list[OpenTransaction]:
        """End what an earlier producer of ``transactional_id`` left open on ``tps``.

        Called once the partition's new producer has fenced the old one
        (InitProducerId), which makes the coordinator end every transaction
        it knows of. What is still open after ``wait_s`` is a hanging
        transaction. Its outcome is the one the coordinator recorded for the
        old epoch just before (``before``: CompleteCommit or PrepareCommit
        means the batch committed everywhere else, so COMMIT; Ongoing,
        PrepareAbort, CompleteAbort or Empty means ABORT); without that record
        (another restart already bumped the epoch) there is no safe choice
        and the worker refuses. Returns what it ended.
        """
        tps = list(tps)
        deadline = time.monotonic() + wait_s
        while True:
            ends = await self.offsets(tps, READ_UNCOMMITTED)
            stable = await self.offsets(tps, READ_COMMITTED)
            open_tps = [tp for tp in tps if stable.get(tp, 0) < ends.get(tp, 0)]
            if not open_tps or time.monotonic() >= deadline:
                break
            await asyncio.sleep(MAX_POLL_S)
        ended = []
        for tp in open_tps:
            for txn in await self.open_transactions(tp):
                commit = _outcome(txn, before)
                if commit is None:
                    why = (
                        "another producer's"
                        if before is None or txn.producer_id != before.producer_id
                        else f"its outcome is unknown: the coordinator says {before.state} "
                        f"at epoch {before.producer_epoch}"
                    )
                    raise HangingTransaction(txn, self.bootstrap, why)
                await self.end(txn, commit)
                ended.append(txn)
        return ended


def _outcome(txn: OpenTransaction, before: CoordinatorView | None) -> bool | None:
    """COMMIT (True) or ABORT (False) for a hanging transaction, or None: unknown."""
    if before is None or txn.producer_id != before.producer_id:
        return None
    if txn.producer_epoch != before.producer_epoch:
        return None
    if before.state in ("CompleteCommit", "PrepareCommit"):
        return True
    if before.state in ("Ongoing", "PrepareAbort", "CompleteAbort", "Empty"):
        return False  # Empty at that epoch: no partition of it was ever added, none committed
    return None
