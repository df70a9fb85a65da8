"""`kill -9` of the notifier again and again mid-run: nothing lost, copies keep their ids."""

from __future__ import annotations

from collections import defaultdict

import orjson

from rater.notifier.compose import message_id
from rater.notifier.notice import decode
from rater.ops.mail_server import MailServer
from tests.support.notices import batch, encoded
from tests.support.notifier_harness import Notifier, key_of, produce, wait_committed, wait_until

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
