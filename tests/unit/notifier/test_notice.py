"""Decoding `notifications` records: usable, without contact, or unusable with a reason."""

from __future__ import annotations

import orjson
import pytest

from rater.notifier.notice import Unusable, decode
from tests.support.notices import TYPES, notification


@pytest.mark.parametrize("kind", TYPES)
def test_every_type_decodes(kind: str) -> None:
    notice = decode(orjson.dumps(notification(kind, language="de")))
    assert (notice.type, notice.language, notice.contact_email) == (
        kind, "de", "admin@acme.example",
    )  # fmt: skip


def test_no_contact_is_a_usable_notice_without_address() -> None:
    notice = decode(orjson.dumps(notification("balance_zero", contact=None)))
    assert notice.contact_email is None and notice.language == "en"


def test_an_unknown_language_falls_back_to_english() -> None:
    value = notification("balance_zero", language="fr")
    assert decode(orjson.dumps(value)).language == "en"


def test_the_key_holds_the_tenant_since_ids_are_unique_per_tenant_only() -> None:
    a = decode(orjson.dumps(notification("balance_zero", tenant="a")))
    b = decode(orjson.dumps(notification("balance_zero", tenant="b")))
    assert a.notification_id == b.notification_id and a.key != b.key


def _broken(**changes: object) -> bytes:
    value = notification("credits_expiring")
    for name, change in changes.items():
        if name.startswith("d_"):
            value["details"][name[2:]] = change
        else:
            value[name] = change
    return orjson.dumps(value)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (None, "invalid_json"),
        (_broken(type="account_closed"), "unknown_type"),
        (_broken(type=None), "unknown_type"),
        (_broken(d_contact_email="two@@example.com"), "bad_address"),
        (_broken(d_contact_email="no-domain@localhost"), "bad_address"),
        (_broken(d_contact_email="sp ace@example.com"), "bad_address"),
        (_broken(d_contact_email="x" * 250 + "@a.bc"), "bad_address"),
        (_broken(d_contact_email=17), "bad_address"),
        (_broken(d_amount=12.5), "invalid_record"),
        (_broken(d_amount="twelve"), "invalid_record"),
        (_broken(d_expires_at="next week"), "invalid_record"),
        (_broken(d_lot_id=None), "invalid_record"),
        (_broken(at="2027-03-01"), "invalid_record"),  # no zone: not RFC 3339
        (_broken(tenant_id=""), "invalid_record"),
        (_broken(details="x"), "invalid_record"),
    ],
)
def test_unusable_records_say_why(raw: bytes | None, reason: str) -> None:
    with pytest.raises(Unusable) as caught:
        decode(raw)
    assert caught.value.reason == reason
