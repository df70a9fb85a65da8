"""Rendering: every type in both languages, text and HTML, with exact amounts and dates."""

from __future__ import annotations

import re
from datetime import datetime
from html.parser import HTMLParser

import orjson
import pytest

from rater.notifier.notice import decode
from rater.notifier.render import format_date, format_money, render
from tests.support.notices import TYPES, notification

HEADINGS = {
    "en": ("What this means", "What to do next", "Hello,"),
    "de": ("Was das bedeutet", "Was Sie jetzt tun können", "Guten Tag,"),
}
# What each example notice (tests/support/notices.py) must show, formatted per language.
SHOWN = {
    ("auto_recharge_succeeded", "en"): ["EUR 50.00", "EUR 62.50", "March 1, 2027"],
    ("auto_recharge_succeeded", "de"): ["50,00 EUR", "62,50 EUR", "1. März 2027"],
    ("auto_recharge_failed", "en"): ["card expired", "March 1, 2027", "24 hours"],
    ("auto_recharge_failed", "de"): ["card expired", "1. März 2027", "24 Stunden"],
    ("balance_zero", "en"): ["EUR -12.3456", "toll-free dial-in", "international calls"],
    ("balance_zero", "de"): ["-12,3456 EUR", "gebührenfreie Einwahl", "internationale Anrufe"],
    ("credits_expiring", "en"): ["EUR 1,234.50", "March 31, 2027", "14:05 UTC"],
    ("credits_expiring", "de"): ["1.234,50 EUR", "31. März 2027", "14:05 UTC"],
    ("credits_expired", "en"): ["EUR 12.50", "March 1, 2027", "purchase:p-1"],
    ("credits_expired", "de"): ["12,50 EUR", "1. März 2027", "purchase:p-1"],
    ("nce_auto_recharge_enabled", "en"): ["auto-recharge off", "March 1, 2027"],
    ("nce_auto_recharge_enabled", "de"): ["Aufladung aus", "1. März 2027"],
}


def _notice(kind: str, language: str, currency: str | None = "EUR", **details: str):
    value = notification(kind, language=language)
    if currency is not None:
        value["details"]["currency"] = currency
    value["details"].update(details)
    return decode(orjson.dumps(value))


class _Text(HTMLParser):
    """The visible text of an HTML document, and whether its tags are balanced."""

    VOID = {"meta", "br", "img", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("kind", TYPES)
def test_every_type_renders_in_both_formats(kind: str, language: str) -> None:
    rendered = render(_notice(kind, language))
    parser = _Text()
    parser.feed(rendered.html)
    parser.close()
    assert parser.open == [], "unclosed HTML tags"
    html_text = parser.text()
    plain = " ".join(rendered.text.split())
    assert rendered.subject and "\n" not in rendered.subject
    for shown in [*HEADINGS[language], *SHOWN[(kind, language)]]:
        assert shown in plain, f"text lacks {shown!r}"
        assert shown in html_text, f"html lacks {shown!r}"
    assert f'<html lang="{language}">' in rendered.html
    assert "{{" not in rendered.text + rendered.html
    assert "acme" in plain and "acme" in html_text  # the footer names the account
    long_lines = [line for line in rendered.text.splitlines() if len(line) > 78]
    assert not long_lines


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("kind", TYPES)
def test_languages_differ_and_subjects_name_the_amount(kind: str, language: str) -> None:
    other = {"en": "de", "de": "en"}[language]
    mine, theirs = render(_notice(kind, language)), render(_notice(kind, other))
    assert mine.subject != theirs.subject
    assert HEADINGS[other][0] not in mine.text
    if kind in ("auto_recharge_succeeded", "credits_expiring", "credits_expired"):
        assert SHOWN[(kind, language)][0] in mine.subject


def test_text_comes_from_the_data_escaped_in_html_only() -> None:
    rendered = render(_notice("auto_recharge_failed", "en", reason="<b>card & bank</b>"))
    assert "<b>card & bank</b>" in rendered.text
    assert "&lt;b&gt;card &amp; bank&lt;/b&gt;" in rendered.html
    assert "<b>card" not in rendered.html


def test_a_balance_still_negative_after_a_recharge_says_services_stay_blocked() -> None:
    rendered = render(_notice("auto_recharge_succeeded", "en", balance="-3.000000"))
    assert "stay blocked" in " ".join(rendered.text.split())
    assert "without interruption" not in rendered.text


def test_without_a_currency_the_amount_is_shown_without_a_code() -> None:
    rendered = render(_notice("credits_expired", "de", currency=None))
    assert "Die noch nicht genutzten 12,50 sind verfallen" in " ".join(rendered.text.split())
    assert "EUR" not in rendered.text


@pytest.mark.parametrize(
    ("amount", "currency", "language", "shown"),
    [
        ("12.500000", "EUR", "de", "12,50 EUR"),
        ("12.500000", "EUR", "en", "EUR 12.50"),
        ("0.024000", "USD", "en", "USD 0.024"),
        ("0.000001", "EUR", "de", "0,000001 EUR"),
        ("1234567.891000", "EUR", "de", "1.234.567,891 EUR"),
        ("1234567.891000", "EUR", "en", "EUR 1,234,567.891"),
        ("-12.345600", "CHF", "de", "-12,3456 CHF"),
        ("-12.345600", "CHF", "en", "CHF -12.3456"),
        ("5", "EUR", "en", "EUR 5.00"),
        ("0.000000", "EUR", "de", "0,00 EUR"),
        ("99.990000", None, "de", "99,99"),
    ],
)
def test_amounts_are_exact(amount: str, currency: str | None, language: str, shown: str) -> None:
    assert format_money(amount, currency, language) == shown


@pytest.mark.parametrize(
    ("when", "language", "shown"),
    [
        ("2027-03-01T00:00:00Z", "de", "1. März 2027"),
        ("2027-03-01T00:00:00Z", "en", "March 1, 2027"),
        ("2027-12-31T23:59:59.999999Z", "en", "December 31, 2027"),
        ("2027-02-28T23:30:00-02:00", "de", "1. März 2027"),  # the UTC date
    ],
)
def test_dates_are_read_as_people_write_them(when: str, language: str, shown: str) -> None:
    assert format_date(datetime.fromisoformat(when), language) == shown


def test_every_paragraph_of_the_text_is_wrapped() -> None:
    text = render(_notice("balance_zero", "de")).text
    assert re.search(r"\n\n", text)  # paragraphs stay apart
    assert max(len(line) for line in text.splitlines()) <= 78
