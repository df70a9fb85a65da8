"""`rater notify` wired together: web views, sent log, mailer and the delivery loop."""

from __future__ import annotations

import asyncio
import logging
import signal

from rater.notifier.delivery import Delivery
from rater.notifier.mailer import Mailer, SmtpMailer
from rater.notifier.metrics import NotifierMetrics
from rater.notifier.sent_log import SentLog
from rater.notifier.settings import NotifierSettings
from rater.notifier.web import build_app, start

log = logging.getLogger(__name__)


async def serve(settings: NotifierSettings, mailer: Mailer | None = None) -> None:
    """Run until SIGTERM or SIGINT; then finish what is in flight for a moment and commit."""
    metrics = NotifierMetrics()
    sent = SentLog(settings.kafka, settings.sent_topic)
    mailer = mailer or SmtpMailer(settings.smtp)
    delivery = Delivery(settings, mailer, sent, metrics)
    runner = None
    if settings.web_port:
        runner = await start(build_app(lambda: delivery.state, metrics), settings.web_port)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, delivery.stop)
    try:
        await sent.start()
        log.info("sent log %s holds %d notices", settings.sent_topic, len(sent))
        log.info(
            "notifying from %s (group %s) over %s:%d (%s)",
            settings.notifications_topic, settings.group_id, settings.smtp.host,
            settings.smtp.port, settings.smtp.security,
        )  # fmt: skip
        await delivery.run()
    finally:
        await asyncio.gather(sent.stop(), mailer.close(), return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
