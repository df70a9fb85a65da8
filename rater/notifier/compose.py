"""A rendered notice -> the e-mail that goes out, with the ids SPEC 10 asks for.

Pure. The ``Message-ID`` is a hash of the tenant and the notification id, so
the same notification always gives the same valid RFC 5322 id, whichever
process or attempt sends it, and a receiver can drop a redelivered copy.
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import formatdate

from rater.notifier.notice import Notice
from rater.notifier.render import Rendered

MESSAGE_ID_DOMAIN = "notify.rater"  # fixed, not the sender's: the id must not change with config
NOTIFICATION_ID_HEADER = "X-Rater-Notification-Id"
TENANT_ID_HEADER = "X-Rater-Tenant-Id"


def message_id(notice: Notice) -> str:
    """``<hex@notify.rater>``: dot-atom on both sides, so valid whatever the ids contain.

    A notification id may hold any character a tenant or event id holds
    (spaces, ``@``, ``<``), which RFC 5322's msg-id does not allow, so it is
    hashed; the tenant is part of the hash because notification ids are
    unique per tenant only (see :attr:`Notice.key`).
    """
    digest = hashlib.sha256(notice.key).hexdigest()[:40]
    return f"<{digest}@{MESSAGE_ID_DOMAIN}>"


def compose(notice: Notice, rendered: Rendered, sender: str) -> EmailMessage:
    """The mail for a notice with a contact: text with an HTML alternative."""
    if notice.contact_email is None:
        raise ValueError(f"{notice.notification_id}: no contact to mail")
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = notice.contact_email
    mail["Subject"] = rendered.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = message_id(notice)
    mail[NOTIFICATION_ID_HEADER] = notice.notification_id
    mail[TENANT_ID_HEADER] = notice.tenant_id
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a notice
    mail.set_content(rendered.text)
    mail.add_alternative(rendered.html, subtype="html")
    # after the body: setting content drops every Content-* header set before it
    mail["Content-Language"] = notice.language
    return mail
