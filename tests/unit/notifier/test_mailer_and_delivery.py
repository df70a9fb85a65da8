"""What the delivery loop does with each SMTP outcome, back-off, and its commit point."""

from __future__ import annotations

import random

import pytest
from aiosmtplib import errors

from rater.config import SettingsError
from rater.notifier.delivery import _Partition, _Slot, backoff
from rater.notifier.mailer import Refused, Transient, classify
from rater.notifier.settings import NotifierSettings


def _refused(code: int) -> errors.SMTPRecipientsRefused:
    return errors.SMTPRecipientsRefused([errors.SMTPRecipientRefused(code, "no", "a@b.cd")])


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (_refused(550), "refused"),
        (_refused(553), "refused"),
        (errors.SMTPDataError(554, "rejected"), "refused"),
        (_refused(451), "temporary"),
        (_refused(452), "temporary"),
        (errors.SMTPDataError(451, "later"), "temporary"),
        (errors.SMTPServerDisconnected("gone"), "unreachable"),
        (errors.SMTPConnectError("refused"), "unreachable"),
        (ConnectionRefusedError(111, "refused"), "unreachable"),
        (errors.SMTPReadTimeoutError("slow"), "timeout"),
        (errors.SMTPConnectTimeoutError("slow"), "timeout"),
        (TimeoutError(), "timeout"),
        (errors.SMTPAuthenticationError(535, "bad login"), "auth"),
        (errors.SMTPSenderRefused(550, "not you", "x@y.zz"), "sender_refused"),
        (errors.SMTPHeloError(501, "helo"), "temporary"),
    ],
)
def test_only_a_5xx_for_the_message_or_address_is_final(exc: Exception, outcome: str) -> None:
    result = classify(exc)
    if outcome == "refused":
        assert isinstance(result, Refused) and 500 <= result.code < 600
    else:
        assert isinstance(result, Transient) and result.reason == outcome


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    delays = [[backoff(n, 0.5, 60.0, rng) for n in range(12)] for _ in range(50)]
    for run in delays:
        for n, delay in enumerate(run):
            ceiling = min(60.0, 0.5 * 2**n)
            assert ceiling / 2 <= delay <= ceiling
    assert len({run[3] for run in delays}) > 40  # jitter: retries of one outage spread out


def test_the_commit_point_never_passes_an_unfinished_notice() -> None:
    partition = _Partition()
    slots = [_Slot(offset) for offset in range(10, 15)]
    partition.slots.extend(slots)
    assert partition.committable() is None
    slots[1].done = slots[2].done = True  # later notices finish first
    assert partition.committable() is None
    slots[0].done = True
    assert partition.committable() == 13
    slots[4].done = True
    assert partition.committable() is None
    slots[3].done = True
    assert partition.committable() == 15 and not partition.slots


ENV = {"RATER_MAIL_FROM": "credits@rater.example"}


def test_settings_defaults_follow_spec_10() -> None:
    settings = NotifierSettings.from_env(ENV)
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.security) == (
        "127.0.0.1", 25, "starttls",
    )  # fmt: skip
    assert settings.group_id == "rater-notifier"
    assert settings.notifications_topic == "notifications"
    env = ENV | {
        "RATER_SMTP_HOST": "mail.example", "RATER_SMTP_PORT": "465",
        "RATER_SMTP_SECURITY": "TLS", "RATER_SMTP_USERNAME": "u", "RATER_SMTP_PASSWORD": "p",
        "RATER_NOTIFY_WEB_PORT": "7000", "RATER_TOPIC_PREFIX": "acme-",
        "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    }  # fmt: skip
    settings = NotifierSettings.from_env(env)
    assert settings.smtp.security == "tls" and settings.smtp.username == "u"
    assert settings.web_port == 7000 and settings.notifications_topic == "acme-notifications"
    assert settings.kafka.security.protocol == "SASL_SSL"
    assert NotifierSettings.from_env(settings.to_env() | env) == settings


@pytest.mark.parametrize(
    "env",
    [{}, ENV | {"RATER_SMTP_SECURITY": "ssl"}, ENV | {"RATER_SMTP_PORT": "x"}],
)
def test_unusable_settings_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="RATER_"):
        NotifierSettings.from_env(env)
