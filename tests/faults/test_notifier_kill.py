"""`kill -9` of the notifier again and again mid-run: nothing lost, copies keep their ids."""

from __future__ import annotations

from collections import defaultdict

import orjson

from rater.devkit.mail_server import MailServer
from rater.notifier.compose import message_id
from rater.notifier.notice import decode
from tests.support.notices import batch, encoded
from tests.support.notifier_harness import (
    Notifier,
    committed,
    data_ends,
    key_of,
    produce,
    wait_committed,
    wait_until,
)

KILLS = 4


async def test_kill_9_repeatedly_loses_nothing(settings, tmp_path) -> None:
    notices = batch(400, tenants=11)
    # A slow server (20 ms per mail, 8 in flight): a run of several seconds to kill into.
    server = MailServer(latency_s=0.02).start()
    notifier = Notifier(settings, server, tmp_path / "notifier.log", concurrency=8)
    notifier.start()
    try:
        await notifier.wait_ready()
        await produce(settings, [encoded(v) for v in notices])
        for kill in range(1, KILLS + 1):
            goal = kill * len(notices) // (KILLS + 2)
            await wait_until(lambda g=goal: server.count() >= g, 120, f"{goal} mails", notifier,
                             poll=0.02)  # fmt: skip
            notifier.kill()
            assert server.count() < len(notices), f"the run ended before kill {kill}"
            notifier.start()
            await notifier.wait_ready()
        await wait_committed(notifier, timeout=180)
    finally:
        notifier.stop()
        server.stop()

    copies = server.copies()
    assert set(copies) == {key_of(v) for v in notices}, "a notice was lost"
    ids: dict[str, set[str]] = defaultdict(set)
    for received in server.mails():
        message = received.message
        ids[f"{message['X-Rater-Tenant-Id']}/{message['X-Rater-Notification-Id']}"].add(
            message["Message-ID"]
        )
    expected = {key_of(v): {message_id(decode(orjson.dumps(v)))} for v in notices}
    assert ids == expected  # every copy of a notice carries its one Message-ID
    doubled = sum(n - 1 for n in copies.values())
    # a copy needs a kill between the server's 250 and the sent log: at most the sends in
    # flight at each kill
    assert doubled <= KILLS * 8, copies.most_common(5)


async def test_a_second_notifier_takes_over_a_killed_ones_partitions(settings, tmp_path) -> None:
    """Two notifiers share the group; one is killed for good mid-run.

    The survivor gets its partitions at the rebalance after the dead
    member's session (and revokes and is given back its own, cancelling its
    sends in flight): every notice still arrives, copies only with their ids.
    """
    notices = batch(300, tenants=13)
    # 100 ms per mail, 8 in flight: each notifier needs about 2 s for its half at best
    server = MailServer(latency_s=0.1).start()
    first = Notifier(settings, server, tmp_path / "first.log", concurrency=8,
                     instance_id="notifier-a")  # fmt: skip
    second = Notifier(settings, server, tmp_path / "second.log", concurrency=8,
                      instance_id="notifier-b")  # fmt: skip
    first.start()
    second.start()
    try:
        await first.wait_ready()
        await second.wait_ready()
        await produce(settings, [encoded(v) for v in notices])
        await wait_until(lambda: _sent(second) >= 5, 120, "the second has mailed", second,
                         poll=0.02)  # fmt: skip
        second.kill()
        ends = await data_ends(settings)
        done = await committed(settings, first.config.group_id)
        assert any(done.get(p, 0) < end for p, end in ends.items()), "nothing left to take over"
        await wait_committed(first, timeout=240)
        assert first.metric("rater_mails_failed_total", reason="refused") == 0
    finally:
        first.stop()
        second.stop()
        server.stop()
    copies = server.copies()
    assert set(copies) == {key_of(v) for v in notices}, "a notice was lost"
    for received in server.mails():
        message = received.message
        value = next(v for v in notices if key_of(v) == f"{message['X-Rater-Tenant-Id']}/"
                     f"{message['X-Rater-Notification-Id']}")  # fmt: skip
        assert message["Message-ID"] == message_id(decode(orjson.dumps(value)))
    assert sum(n - 1 for n in copies.values()) <= 2 * 8, copies.most_common(5)


def _sent(notifier: Notifier) -> float:
    return sum(
        value
        for (name, _), value in notifier.metrics().items()
        if name == "rater_mails_sent_total"
    )
