"""The notifier's configuration from the environment (SPEC 10).

Kafka settings are the worker's own (``rater.config``: bootstrap,
topic prefix, app id, SASL/TLS), so one set of variables configures both
processes; the SMTP and web settings are the notifier's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from rater.config import Settings, SettingsError, port, positive_int
from rater.notifier.mailer import SECURITY_MODES, SmtpSettings

DEFAULT_WEB_PORT = 6067  # beside the worker's 6066


@dataclass(frozen=True)
class NotifierSettings:
    kafka: Settings
    smtp: SmtpSettings
    mail_from: str
    web_port: int = DEFAULT_WEB_PORT  # 0: no web server
    concurrency: int = 16  # sends in flight at once
    retry_max_s: float = 60.0  # longest back-off between two attempts of one notice
    # Static group membership (KIP-345): a notifier restarted after a crash with the
    # same id takes its partitions back at once instead of after the dead session.
    instance_id: str | None = None

    @property
    def group_id(self) -> str:
        """Its own consumer group (SPEC 10), named after the rater's app id."""
        return f"{self.kafka.app_id}-notifier"

    @property
    def sent_topic(self) -> str:
        """The sent log (sent_log.py), named like the worker's changelog after the app id."""
        return f"{self.kafka.app_id}-notifier-sent"

    @property
    def notifications_topic(self) -> str:
        return self.kafka.topic("notifications")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifierSettings:
        env = os.environ if env is None else env
        security = env.get("RATER_SMTP_SECURITY", "starttls").strip().lower()
        if security not in SECURITY_MODES:
            raise SettingsError(
                f"RATER_SMTP_SECURITY={security!r}: expected one of {', '.join(SECURITY_MODES)}"
            )
        mail_from = env.get("RATER_MAIL_FROM", "").strip()
        if not mail_from:
            raise SettingsError("RATER_MAIL_FROM is not set: the sender address of the notices")
        return cls(
            kafka=Settings.from_env(env),
            smtp=SmtpSettings(
                host=env.get("RATER_SMTP_HOST", "127.0.0.1"),
                port=port(env, "RATER_SMTP_PORT", 25) or 25,
                security=security,
                username=env.get("RATER_SMTP_USERNAME") or None,
                password=env.get("RATER_SMTP_PASSWORD") or None,
                timeout_s=float(positive_int(env, "RATER_SMTP_TIMEOUT_S", 30)),
                cafile=env.get("RATER_SMTP_CAFILE") or None,
            ),
            mail_from=mail_from,
            web_port=port(env, "RATER_NOTIFY_WEB_PORT", DEFAULT_WEB_PORT),
            concurrency=positive_int(env, "RATER_NOTIFY_CONCURRENCY", 16),
            retry_max_s=float(positive_int(env, "RATER_NOTIFY_RETRY_MAX_S", 60)),
            instance_id=env.get("RATER_NOTIFY_INSTANCE_ID") or None,
        )

    def to_env(self) -> dict[str, str]:
        """The variables that configure this notifier (minus Kafka's): for child processes."""
        s = self.smtp
        env = {
            "RATER_SMTP_HOST": s.host,
            "RATER_SMTP_PORT": str(s.port),
            "RATER_SMTP_SECURITY": s.security,
            "RATER_SMTP_TIMEOUT_S": str(int(s.timeout_s)),
            "RATER_MAIL_FROM": self.mail_from,
            "RATER_NOTIFY_WEB_PORT": str(self.web_port),
            "RATER_NOTIFY_CONCURRENCY": str(self.concurrency),
            "RATER_NOTIFY_RETRY_MAX_S": str(int(self.retry_max_s)),
        }
        for name, value in (
            ("RATER_SMTP_USERNAME", s.username),
            ("RATER_SMTP_PASSWORD", s.password),
            ("RATER_SMTP_CAFILE", s.cafile),
            ("RATER_NOTIFY_INSTANCE_ID", self.instance_id),
        ):
            if value:
                env[name] = value
        return env
