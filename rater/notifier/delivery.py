"""The consumer loop: each notice mailed once, nothing lost, many in flight (SPEC 10).

Records of `notifications` are read (read_committed, the notifier's own
group), at most ``window`` notices per partition past its committed offset
(a partition at its limit is paused, so a notice retried for days holds up
its own partition only), and each is delivered by a task of its own, at
most ``concurrency`` of them talking to the mail server at once, so a burst
does not queue behind one slow send.

A notice is *finished* when it is unusable (logged with its offset,
counted), has no contact (counted), was already in the sent log, or the
server accepted or refused it for good and the sent log has the outcome. A
transient failure is retried with exponential back-off and jitter, for as
long as it takes. Each partition's committed offset is the offset of its
first unfinished notice: later notices may finish first, but the offset
never passes one that did not, so a crash or a rebalance gives every
unfinished notice to the next owner, and the sent log keeps that owner from
mailing again what was finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import Message

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from rater.notifier.compose import compose
from rater.notifier.mailer import Accepted, Mailer, Refused, Transient
from rater.notifier.metrics import NotifierMetrics
from rater.notifier.notice import Notice, Unusable, decode
from rater.notifier.render import render
from rater.notifier.sent_log import SentLog
from rater.notifier.settings import NotifierSettings

log = logging.getLogger(__name__)

RETRY_BASE_S = 0.5  # first back-off; doubles per attempt up to settings.retry_max_s
FETCH_WAIT_MS = 200  # longest a fetch waits: also how late a finished notice's commit can be
SHUTDOWN_GRACE_S = 10.0  # on SIGTERM, how long sends in flight may still finish


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before retry ``attempt`` (0-based): exponential, capped, half of it jitter.

    The jitter spreads the retries of many notices that failed together (a
    server outage) so they do not all knock at the same instant when it is back.
    """
    ceiling = min(cap, base * 2.0**attempt)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass
class _Slot:
    offset: int
    done: bool = False


@dataclass
class _Partition:
    """The notices read from one partition and not yet passed by its committed offset."""

    slots: deque[_Slot] = field(default_factory=deque)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    committed: int | None = None

    def committable(self) -> int | None:
        """The offset after the last notice of an unbroken finished run, when it moved."""
        end = None
        while self.slots and self.slots[0].done:
            end = self.slots.popleft().offset + 1
        return end


class Delivery(ConsumerRebalanceListener):
    def __init__(
        self,
        settings: NotifierSettings,
        mailer: Mailer,
        sent: SentLog,
        metrics: NotifierMetrics,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.mailer = mailer
        self.sent = sent
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.window = settings.concurrency * 16  # notices read past a partition's commit, at most
        self._sending = asyncio.Semaphore(settings.concurrency)
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._active: dict[bytes, asyncio.Event] = {}  # notice key -> set when its task ends
        self._progress = asyncio.Event()
        self._stopping = asyncio.Event()
        self.state = "starting"  # starting, rebalancing, consuming, stopping: for /ready
        kafka = settings.kafka
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers,
            group_id=settings.group_id,
            group_instance_id=settings.instance_id,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **kafka.security.client_kwargs(),
        )

    # -- the loop ----------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return sum(len(p.slots) for p in self._partitions.values())

    async def run(self) -> None:
        """Consume until :meth:`stop`; the consumer is started and stopped here."""
        await self.consumer.start()
        self.consumer.subscribe([self.settings.notifications_topic], listener=self)
        try:
            while not self._stopping.is_set():
                if self._pause_full_partitions():
                    batch = await self.consumer.getmany(
                        timeout_ms=FETCH_WAIT_MS, max_records=self.window
                    )
                    assigned = self.consumer.assignment()
                    for tp, records in batch.items():
                        if tp not in assigned:  # revoked while fetching: its next owner reads it
                            continue
                        self.metrics.input_records.labels(tp.topic).inc(len(records))
                        for record in records:
                            self._start(tp, record)
                else:
                    await self._wait_for_progress()
                await self._commit()
                self._update_lag()
            self.state = "stopping"
            await self._drain(SHUTDOWN_GRACE_S)
        finally:
            await self.consumer.stop()

    def _pause_full_partitions(self) -> bool:
        """Pause each partition with ``window`` notices past its commit, resume the others.

        True when some assigned partition may be fetched. A fetch may overshoot
        a partition's limit by one fetch's records; the window bounds memory,
        not an exact count.
        """
        assigned = self.consumer.assignment()
        paused = self.consumer.paused()
        fetchable = False
        for tp in assigned:
            partition = self._partitions.get(tp)
            full = partition is not None and len(partition.slots) >= self.window
            if full and tp not in paused:
                self.consumer.pause(tp)
            elif not full:
                if tp in paused:
                    self.consumer.resume(tp)
                fetchable = True
        return fetchable

    def stop(self) -> None:
        self._stopping.set()
        self._progress.set()

    async def _wait_for_progress(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._progress.wait(), FETCH_WAIT_MS / 1000)
        self._progress.clear()

    def _start(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        partition = self._partitions.setdefault(tp, _Partition())
        slot = _Slot(record.offset)
        partition.slots.append(slot)
        task = asyncio.create_task(self._finish(tp, record, slot))
        partition.tasks.add(task)
        task.add_done_callback(partition.tasks.discard)
        self.metrics.in_flight.set(self.in_flight)

    async def _commit(self, only: list[TopicPartition] | None = None) -> None:
        offsets = {}
        for tp, partition in self._partitions.items():
            if only is not None and tp not in only:
                continue
            end = partition.committable()
            if end is not None:
                offsets[tp] = end
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance: the next owner reads from the last commit
            log.warning("commit of %s failed: %s", offsets, exc)
            return
        for tp, end in offsets.items():
            self._partitions[tp].committed = end
        self.metrics.in_flight.set(self.in_flight)

    def _update_lag(self) -> None:
        for tp, partition in self._partitions.items():
            end = self.consumer.last_stable_offset(tp) or self.consumer.highwater(tp)
            if end is not None and partition.committed is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(
                    max(0, end - partition.committed)
                )

    async def _drain(self, grace: float) -> None:
        """Let sends in flight finish for ``grace`` seconds, cancel the rest, commit."""
        tasks = [t for p in self._partitions.values() for t in p.tasks]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._commit()

    # -- rebalance -----------------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Stop the revoked partitions' notices and commit what they finished.

        Their unfinished notices go to the next owner; one cancelled in the
        middle of the SMTP dialogue may reach the receiver twice, with the
        same Message-ID (SPEC 10).
        """
        self.state = "rebalancing"
        ours = [tp for tp in revoked if tp in self._partitions]
        tasks = [t for tp in ours for t in self._partitions[tp].tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._commit(only=ours)
        for tp in ours:
            del self._partitions[tp]
            with contextlib.suppress(KeyError):  # reported by its next owner from now on
                self.metrics.lag.remove(tp.topic, str(tp.partition))
        self.metrics.in_flight.set(self.in_flight)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Read the sent log to its end: another notifier may have finished notices meanwhile."""
        await self.sent.catch_up()
        for tp in assigned:
            partition = self._partitions.setdefault(tp, _Partition())
            partition.committed = (await self.consumer.committed(tp)) or 0
        if not self._stopping.is_set():
            self.state = "consuming"

    # -- one notice ----------------------------------------------------------------------

    async def _finish(self, tp: TopicPartition, record: ConsumerRecord, slot: _Slot) -> None:
        """Deliver one record's notice; its slot is done unless the task was cancelled.

        An unexpected error (a defect, not a mail server's answer) must not
        lose the notice nor stop the others: it is logged with the offset and
        the delivery tried again after a back-off, like a transient failure.
        """
        attempt = 0
        while True:
            try:
                await self._deliver(tp, record)
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = backoff(attempt, RETRY_BASE_S, self.settings.retry_max_s, self.rng)
                log.exception("%s[%d] offset %d: delivery failed; again in %.1fs",
                              tp.topic, tp.partition, slot.offset, delay)  # fmt: skip
                attempt += 1
                await asyncio.sleep(delay)  # back-off
        slot.done = True
        self._progress.set()

    async def _deliver(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        try:
            notice = decode(record.value)
        except Unusable as exc:
            log.warning("%s[%d] offset %d skipped: %s", tp.topic, tp.partition, record.offset, exc)
            self.metrics.mails_failed.labels(exc.reason).inc()
            return
        if notice.contact_email is None:
            self.metrics.without_contact.inc()
            return
        async with self._exclusive(notice.key):
            if notice.key in self.sent:
                self.metrics.duplicates_skipped.inc()
                return
            try:
                mail = compose(notice, render(notice), self.settings.mail_from)
            except ValueError as exc:  # e.g. a line break in an id that goes into a header
                log.warning("%s[%d] offset %d skipped: cannot build its mail: %s",
                            tp.topic, tp.partition, record.offset, exc)  # fmt: skip
                self.metrics.mails_failed.labels("invalid_record").inc()
                return
            outcome = await self._send(notice, mail)
            if isinstance(outcome, Refused):
                log.warning(
                    "%s[%d] offset %d: %s refused for good by the mail server (%d %s)",
                    tp.topic, tp.partition, record.offset, notice.notification_id,
                    outcome.code, outcome.message,
                )  # fmt: skip
            await self._record(notice, outcome, str(mail["Message-ID"]))
        if isinstance(outcome, Accepted):
            self.metrics.mails_sent.labels(notice.type).inc()
            self.metrics.delay.observe(max(0.0, time.time() - record.timestamp / 1000))
        else:
            self.metrics.mails_failed.labels("refused").inc()

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: bytes) -> AsyncIterator[None]:
        """One task per notice key at a time: a record read twice waits for the first."""
        while (other := self._active.get(key)) is not None:
            await other.wait()
        ended = self._active[key] = asyncio.Event()
        try:
            yield
        finally:
            del self._active[key]
            ended.set()

    async def _send(self, notice: Notice, mail: Message) -> Accepted | Refused:
        attempt = 0
        while True:
            async with self._sending:
                try:
                    return await self.mailer.send(mail)
                except Transient as exc:
                    failure = exc
            self.metrics.retries.labels(failure.reason).inc()
            delay = backoff(attempt, RETRY_BASE_S, self.settings.retry_max_s, self.rng)
            if attempt % 10 == 0:
                log.warning(
                    "%s to %s: attempt %d failed (%s); next in %.1fs",
                    notice.notification_id, notice.contact_email, attempt + 1, failure, delay,
                )  # fmt: skip
            attempt += 1
            await asyncio.sleep(delay)  # the back-off itself, not a synchronisation

    async def _record(self, notice: Notice, outcome: Accepted | Refused, message_id: str) -> None:
        """Write the outcome to the sent log, retrying until the broker has it."""
        kind = "accepted" if isinstance(outcome, Accepted) else "refused"
        attempt = 0
        while True:
            try:
                await self.sent.record(notice, kind, message_id)
                return
            except KafkaError as exc:
                delay = backoff(attempt, RETRY_BASE_S, self.settings.retry_max_s, self.rng)
                log.warning("sent log write for %s failed (%s); next in %.1fs",
                            notice.notification_id, exc, delay)  # fmt: skip
                attempt += 1
                await asyncio.sleep(delay)  # back-off
