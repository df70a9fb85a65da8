"""A notice -> the subject, plain text and HTML of its mail, in the tenant's language (SPEC 10).

Pure: no I/O beyond reading the packaged templates once. The wording lives in
``templates/<language>/<type>.j2`` (one file per type and language, both
formats); ``templates/<language>/base.j2`` holds a language's common words and
``layout.txt`` / ``layout.html`` the two formats. Every mail says what
happened, what it means and what to do next.

Amounts and dates are written the way a reader of the language writes them
(``12,50 EUR`` and ``1. März 2027``; ``EUR 12.50`` and ``March 1, 2027``),
and exactly: every significant digit of the rater's amount is kept, only
trailing zeros past the cents are dropped.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from rater.notifier.notice import MONEY_FIELDS, TIME_FIELDS, Notice

TEMPLATES = Path(__file__).parent / "templates"
WRAP = 72  # plain-text line length (RFC 5322 recommends at most 78)

MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
           "September", "Oktober", "November", "Dezember"),
}  # fmt: skip
# (group separator, decimal mark) per language
NUMBER_MARKS = {"en": (",", "."), "de": (".", ",")}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def format_money(amount: str | Decimal, currency: str | None, language: str) -> str:
    """``12,50 EUR`` (de) or ``EUR 12.50`` (en); exact, at least two decimals, grouped.

    ``currency`` is None when the notice does not carry it (SPEC 8 details
    have no currency): the number alone is then shown.
    """
    value = Decimal(amount)
    sign = "-" if value < 0 else ""
    digits = f"{abs(value):f}"
    whole, _, fraction = digits.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    group, mark = NUMBER_MARKS[language]
    grouped = f"{int(whole):,}".replace(",", group)
    number = f"{sign}{grouped}{mark}{fraction}"
    if currency is None:
        return number
    return f"{number} {currency}" if language == "de" else f"{currency} {number}"


def format_date(when: datetime, language: str) -> str:
    """``1. März 2027`` (de) or ``March 1, 2027`` (en), of the UTC date."""
    day = when.astimezone(UTC)
    month = MONTHS[language][day.month - 1]
    if language == "de":
        return f"{day.day}. {month} {day.year}"
    return f"{month} {day.day}, {day.year}"


def format_time_of_day(when: datetime, language: str) -> str:
    """``14:30 UTC``, the same in both languages."""
    return when.astimezone(UTC).strftime("%H:%M UTC")


def _paragraph_text(value: str) -> str:
    return textwrap.fill(" ".join(str(value).split()), WRAP)


def _paragraph_html(value: str) -> Markup:
    return Markup(" ".join(str(value).split()))


def _row_text(label: str, value: str) -> str:
    return f"  {label}: {value}\n"


def _row_html(label: str, value: str) -> Markup:
    return Markup(
        '<tr><th style="text-align:left;padding:4px 16px 4px 0;font-weight:normal;'
        'color:#555">{}</th><td style="padding:4px 0"><strong>{}</strong></td></tr>\n'
    ).format(label, value)


def _environment(autoescape: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=StrictUndefined,  # a misspelt variable fails the render tests, not a mail
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates ship with the package: no stat() per mail
    )
    env.filters["para"] = _paragraph_html if autoescape else _paragraph_text
    return env


_TEXT = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


def context(notice: Notice) -> dict[str, Any]:
    """What the templates see: the notice's fields, formatted for its language.

    SPEC 8's details carry no currency: amounts show their ISO code only when
    a ``details.currency`` is there (decision "Notifier: amounts without a
    currency"), never a guessed one.
    """
    language = notice.language
    currency = notice.currency
    values: dict[str, Any] = {
        "language": language,
        "tenant_id": notice.tenant_id,
        "notification_id": notice.notification_id,
        "date": format_date(notice.at, language),
    }
    for name, raw in notice.details.items():
        if name in MONEY_FIELDS:
            values[name] = format_money(raw, currency, language)
            values[name + "_negative"] = Decimal(raw) < 0
        elif name in TIME_FIELDS:
            when = datetime.fromisoformat(raw)
            values[name.removesuffix("_at") + "_date"] = format_date(when, language)
            values[name.removesuffix("_at") + "_time"] = format_time_of_day(when, language)
        elif name not in ("contact_email", "language", "currency"):
            values[name] = raw
    return values


def render(notice: Notice) -> Rendered:
    """Subject, plain text and HTML of the notice's mail, in ``notice.language``."""
    values = context(notice)
    name = f"{notice.language}/{notice.type}.j2"
    text_template = _TEXT.get_template(name)
    subject_context = text_template.new_context(
        {**values, "layout": "layout.txt", "row": _row_text}
    )
    subject = " ".join("".join(text_template.blocks["subject"](subject_context)).split())
    text = text_template.render(values, layout="layout.txt", row=_row_text, subject=subject)
    html = _HTML.get_template(name).render(
        values, layout="layout.html", row=_row_html, subject=escape(subject)
    )
    return Rendered(subject=subject, text=text, html=html)
