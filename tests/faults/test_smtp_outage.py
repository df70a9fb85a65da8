"""The mail server refuses (451), then is down for a while: everything arrives, nothing twice."""

from __future__ import annotations

from rater.devkit.mail_server import MailServer
from tests.support.notices import batch, encoded
from tests.support.notifier_harness import Notifier, key_of, produce, wait_committed, wait_until


async def test_451_then_server_down_loses_and_doubles_nothing(settings, tmp_path) -> None:
    notices = batch(60)
    server = MailServer(latency_s=0.01).start()
    server.temporary_refusals = 8
    notifier = Notifier(settings, server, tmp_path / "notifier.log", retry_max_s=2)
    notifier.start()
    try:
        await notifier.wait_ready()
        await produce(settings, [encoded(v) for v in notices[:30]])
        await wait_until(lambda: server.refused_temporarily == 8, 60, "8 refusals", notifier)
        await wait_until(lambda: server.count() >= 5, 120, "mails after the 451s", notifier)
        assert notifier.metric("rater_mail_retries_total", reason="temporary") >= 8

        server.stop()  # down: connections are refused
        await produce(settings, [encoded(v) for v in notices[30:]])
        await wait_until(
            lambda: notifier.metric("rater_mail_retries_total", reason="unreachable") >= 10,
            120, "sends failing against the stopped server", notifier,
        )  # fmt: skip
        assert notifier.get("/ready")[0] == 200  # a stopped mail server only grows the lag
        assert server.count() < len(notices)

        server.start()  # back on the same port
        await wait_committed(notifier, timeout=180)
        assert server.copies() == {key_of(v): 1 for v in notices}
        assert notifier.metric("rater_mails_failed_total", reason="refused") == 0
    finally:
        notifier.stop()
        server.stop()
