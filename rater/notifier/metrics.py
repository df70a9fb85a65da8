"""The notifier's Prometheus metrics (SPEC 11), in a registry of its own.

A registry of its own, not the process-global one, so the notifier's
``/metrics`` shows exactly its own series and tests can build several
notifiers in one process. Names follow SPEC 11; the extra series (retries,
in flight, delay) are what an operator needs to see a mail server outage.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "NotifierMetrics"]


class NotifierMetrics:
    """Every series the notifier updates; ``render()`` is the /metrics body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.input_records = Counter(
            "rater_input_records", "Records read from an input topic.", ["topic"], registry=r
        )
        self.mails_sent = Counter(
            "rater_mails_sent", "Mails the SMTP server accepted, by notification type.",
            ["type"], registry=r,
        )  # fmt: skip
        self.mails_failed = Counter(
            "rater_mails_failed",
            "Notices given up for good, by reason: refused (a 5xx for the message or its "
            "address), invalid_json, unknown_type, bad_address, invalid_record.",
            ["reason"], registry=r,
        )  # fmt: skip
        self.without_contact = Counter(
            "rater_notifications_without_contact",
            "Notifications of tenants without a contact e-mail: counted, not mailed.",
            registry=r,
        )
        self.retries = Counter(
            "rater_mail_retries",
            "Send attempts that will be retried, by reason (temporary, unreachable, timeout, "
            "auth, sender_refused, error).",
            ["reason"], registry=r,
        )  # fmt: skip
        self.duplicates_skipped = Counter(
            "rater_mails_already_sent",
            "Notices not mailed because the sent log has them (a redelivered record).",
            registry=r,
        )
        self.in_flight = Gauge(
            "rater_mails_in_flight", "Notices read and not yet finished.", registry=r
        )
        self.lag = Gauge(
            "rater_consumer_lag_records",
            "Records between the committed offset and the end of a partition.",
            ["topic", "partition"], registry=r,
        )  # fmt: skip
        self.delay = Histogram(
            "rater_mail_delay_seconds",
            "From a notification record's timestamp to its acceptance by the SMTP server.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
