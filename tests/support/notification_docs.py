"""docs/notifications.md, generated from the real templates.

Not a test module. Write it with ``.venv/bin/python -m tests.support.notification_docs``;
tests/unit/notifier/test_docs.py fails when the file and the templates differ.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from rater.notifier.compose import message_id
from rater.notifier.notice import decode
from rater.notifier.render import render
from tests.support.notices import TYPES, notification

DOC = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"
LANGUAGES = {"en": "English", "de": "Deutsch"}

INTRO = """\
# E-mail notices

`rater notify` (SPEC 10) mails each `notifications` record that carries a
contact to `details.contact_email`, in the tenant's `language`, as plain text
with an HTML alternative. Below is every mail as the notifier renders it, for
the example records of `tests/support/notices.py`, generated from the
templates in `rater/notifier/templates/` by
`.venv/bin/python -m tests.support.notification_docs` (a unit test fails when
this file is stale).

Every mail carries `Content-Language`, `X-Rater-Notification-Id` (the
notification id), `X-Rater-Tenant-Id`, `Auto-Submitted: auto-generated` and a
`Message-ID` derived from the tenant and notification id, so a copy sent again
after a crash carries the same ids.

Amounts are exact (every digit the rater wrote, trailing zeros past the cents
dropped) and grouped as a reader of the language expects. SPEC 8's
notification details carry no currency, so the amounts below show no code;
a record whose details carry an ISO 4217 `currency` gets it, as `12,50 EUR`
(German) or `EUR 12.50` (English) (docs/decisions.md D62 ("Notifier: amounts
without a currency")).
"""


def generate() -> str:
    parts = [INTRO]
    for kind in TYPES:
        parts.append(f"\n## `{kind}`\n")
        for language, name in LANGUAGES.items():
            value = notification(kind, language=language)
            notice = decode(orjson.dumps(value))
            rendered = render(notice)
            parts.append(f"\n### {name}\n")
            parts.append(f"\nRecord details: `{orjson.dumps(value['details']).decode()}`\n")
            parts.append(f"\nSubject: **{rendered.subject}**  \n")
            parts.append(f"Message-ID: `{message_id(notice)}`\n")
            parts.append(f"\n```text\n{rendered.text}```\n")
            parts.append(
                f"\n<details><summary>HTML part</summary>\n\n```html\n{rendered.html}```\n"
                "\n</details>\n"
            )
    return "".join(parts)


if __name__ == "__main__":
    DOC.write_text(generate())
    print(f"wrote {DOC}")
