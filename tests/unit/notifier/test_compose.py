"""The mail's headers: ids that let a receiver drop a redelivered copy (SPEC 10)."""

from __future__ import annotations

import email
import email.policy
import re

import orjson

from rater.notifier.compose import compose, message_id
from rater.notifier.notice import decode
from rater.notifier.render import render
from tests.support.notices import notification

# RFC 5322 msg-id with dot-atom-text on both sides
ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
MSG_ID = re.compile(rf"<{ATEXT}(\.{ATEXT})*@{ATEXT}(\.{ATEXT})*>")


def _notice(**overrides: object):
    value = notification("credits_expired", language="de") | overrides
    return decode(orjson.dumps(value))


def test_message_id_is_valid_and_stable_for_any_id() -> None:
    odd = _notice(notification_id="credits_expired:purchase:a b@<c>\"d", tenant_id="t ü")
    for notice in (_notice(), odd):
        assert MSG_ID.fullmatch(message_id(notice))
        assert message_id(notice) == message_id(decode(orjson.dumps(_as_value(notice))))
    assert message_id(_notice()) != message_id(odd)
    assert message_id(_notice(tenant_id="other")) != message_id(_notice())


def _as_value(notice) -> dict:
    return {
        "notification_id": notice.notification_id,
        "tenant_id": notice.tenant_id,
        "type": notice.type,
        "at": notice.at.isoformat(),
        "details": notice.details,
    }


def test_the_mail_carries_language_ids_and_both_formats() -> None:
    notice = _notice()
    rendered = render(notice)
    raw = compose(notice, rendered, "Credits <credits@rater.example>").as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["To"] == "admin@acme.example"
    assert parsed["From"] == "Credits <credits@rater.example>"
    assert parsed["Subject"] == rendered.subject
    assert parsed["Content-Language"] == "de"
    assert parsed["X-Rater-Notification-Id"] == notice.notification_id
    assert parsed["Message-ID"] == message_id(notice)
    assert parsed.get_content_type() == "multipart/alternative"
    plain = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert plain == rendered.text and html == rendered.html


def test_a_line_break_in_an_id_cannot_reach_a_header() -> None:
    import pytest

    notice = _notice(notification_id="credits_expired:x\r\nBcc: someone@else.example")
    with pytest.raises(ValueError, match="line break"):
        compose(notice, render(notice), "credits@rater.example")


def test_non_ascii_sender_names_and_ids_are_encoded() -> None:
    notice = _notice(tenant_id="Müller GmbH")
    raw = compose(notice, render(notice), "Guthaben Müller <g@rater.example>").as_bytes()
    assert raw.isascii()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["From"] == "Guthaben Müller <g@rater.example>"
    assert parsed["X-Rater-Tenant-Id"] == "Müller GmbH"


def test_subjects_survive_smtp_flattening_in_both_languages() -> None:
    """aiosmtplib flattens the mail itself; a folded encoded subject must decode unchanged."""
    from aiosmtplib.email import flatten_message

    from tests.support.notices import TYPES

    for kind in TYPES:
        for language in ("en", "de"):
            notice = decode(orjson.dumps(notification(kind, language=language)))
            rendered = render(notice)
            raw = flatten_message(compose(notice, rendered, "credits@rater.example"))
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert parsed["Subject"] == rendered.subject
