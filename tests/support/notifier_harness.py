"""Running `rater notify` as a child process against a loopback mail server, and checking it.

Not a test module. The notifier runs as its real command line (so a test can
SIGKILL it like a crash); the tests look at it from outside: the mails the
server got, its /metrics, and its group's committed offsets on the broker.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from rater.config import Settings
from rater.devkit.localkafka.readback import read_all
from rater.devkit.mail_server import MailServer
from rater.devkit.worker_process import WorkerProcess, free_port
from rater.notifier.compose import message_id
from rater.notifier.mailer import SmtpSettings
from rater.notifier.notice import decode
from rater.notifier.render import render
from rater.notifier.settings import NotifierSettings

MAIL_FROM = "Credits <credits@rater.example>"


class Notifier:
    """One `rater notify` process; ``start()`` after ``kill()`` keeps its settings.

    A static group member by default (``instance_id``), so a restart after a
    kill gets its partitions back at once; ``instance_id=None`` for a dynamic
    member, which leaves its group when stopped.
    """

    def __init__(
        self,
        settings: Settings,
        server: MailServer,
        log_path: Path,
        retry_max_s: int = 2,
        concurrency: int = 16,
        instance_id: str | None = "notifier-0",
    ) -> None:
        self.config = NotifierSettings(
            kafka=settings,
            smtp=SmtpSettings(host=server.host, port=server.port, security="none", timeout_s=10),
            mail_from=MAIL_FROM,
            web_port=free_port(),
            concurrency=concurrency,
            retry_max_s=float(retry_max_s),
            instance_id=instance_id,
        )
        self.process = WorkerProcess(
            settings, log_path, env=self.config.to_env(), command="notify"
        )

    def start(self) -> None:
        self.process.start()

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()

    def log_tail(self) -> str:
        path = self.process.log_path
        return path.read_text()[-4000:] if path.exists() else "(no log)"

    def get(self, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.config.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, body = self.get("/metrics")
        assert status == 200, body
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    async def wait_ready(self, timeout: float = 120.0) -> None:
        async def ready() -> bool:
            try:
                return self.get("/ready")[0] == 200
            except OSError:  # not listening yet
                return False

        await wait_until(ready, timeout, "the notifier is ready", self)


async def wait_until(
    condition: Callable[[], Awaitable[bool] | bool],
    timeout: float,
    what: str,
    notifier: Notifier | None = None,
    poll: float = 0.1,
) -> None:
    """Poll ``condition`` until it holds; at the deadline fail with ``what`` and the log."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if notifier is not None:
            assert notifier.process.alive(), f"the notifier died:\n{notifier.log_tail()}"
        if time.monotonic() >= deadline:
            tail = notifier.log_tail() if notifier else ""
            raise AssertionError(f"not true after {timeout:.0f}s: {what}\n{tail}")
        await asyncio.sleep(poll)  # poll interval of a condition with a deadline


async def produce(
    settings: Settings,
    records: list[tuple[bytes, bytes]],
    abort: bool = False,
    per_transaction: int = 50,
) -> None:
    """Send ``(key, value)`` records to `notifications` in transactions, as the rater does."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        transactional_id=f"{settings.app_id}-test-{time.monotonic_ns()}",
    )
    await producer.start()
    try:
        for start in range(0, len(records), per_transaction):
            async with producer.transaction():
                for key, value in records[start : start + per_transaction]:
                    await producer.send(settings.topic("notifications"), value, key=key)
                if abort:
                    raise _Abort
    except _Abort:
        pass
    finally:
        await producer.stop()


class _Abort(Exception):
    """Leaves a transaction by exception, so aiokafka aborts it."""


async def data_ends(settings: Settings) -> dict[int, int]:
    """Per partition, the offset after its last committed record: where the notifier must get."""
    ends: dict[int, int] = {}
    for record in await read_all(settings.bootstrap_servers, settings.topic("notifications")):
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    return ends


async def committed(settings: Settings, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    topic = settings.topic("notifications")
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def wait_committed(notifier: Notifier, timeout: float = 120.0) -> None:
    """Until the notifier's group has committed past every record: every notice finished."""
    settings = notifier.config.kafka
    ends = await data_ends(settings)

    async def past() -> bool:
        done = await committed(settings, notifier.config.group_id)
        return all(done.get(p, -1) >= end for p, end in ends.items())

    await wait_until(past, timeout, f"offsets committed past {ends}", notifier, poll=0.5)


async def reset_offsets(settings: Settings, group: str) -> None:
    """Commit offset 0 on every partition for ``group`` (which must have no member)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        topic = settings.topic("notifications")
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.commit({tp: 0 for tp in tps})
    finally:
        await consumer.stop()


def check_mail(received: Any, value: dict[str, Any]) -> None:
    """One received mail is the right one for its notification: address, language, ids, body."""
    notice = decode(orjson.dumps(value))
    message = received.message
    assert received.recipients == (notice.contact_email,)
    assert message["To"] == notice.contact_email
    assert message["Content-Language"] == notice.language
    assert message["X-Rater-Notification-Id"] == notice.notification_id
    assert message["Message-ID"] == message_id(notice)
    rendered = render(notice)
    assert message["Subject"] == rendered.subject
    # SMTP carries lines ending in CRLF (RFC 5321); the rendered text ends them in LF
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert text == rendered.text
    assert html == rendered.html


def key_of(value: dict[str, Any]) -> str:
    return f"{value['tenant_id']}/{value['notification_id']}"
