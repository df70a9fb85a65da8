"""A real SMTP server on loopback (aiosmtpd) for the notifier's tests, demo and load script.

It keeps every accepted mail, parsed, with the time it arrived, and can be
told to refuse: the next ``n`` mails with a 451 (a temporary refusal at
DATA), every mail to an address with a 550 at RCPT, or with a 452 (for now).
:meth:`stop` and :meth:`start` again on the same port play a server that is
down for a while.
Not a fake: the notifier talks real SMTP to it, through aiosmtplib.
``security`` (``starttls`` or ``tls``, with a certificate) and ``login``
make it demand encryption and a login, as a production server does.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from rater.devkit.worker_process import free_port


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage
    at: float  # time.time() when the server accepted it
    tls: bool = False  # the session was encrypted (STARTTLS or TLS)
    login: str | None = None  # the user the session logged in as


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.server.refused_addresses:
            return "550 5.1.1 mailbox unavailable"
        if address.lower() in self.server.deferred_addresses:
            return "452 4.2.2 mailbox full, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.server.latency_s:
            await asyncio.sleep(self.server.latency_s)  # a slower server, before any decision
        # No await from here on: the reply is written in the same step as the mail is kept,
        # so a stop() cannot keep a mail whose 250 the client never got.
        with self.server.lock:
            if self.server.temporary_refusals > 0:
                self.server.temporary_refusals -= 1
                self.server.refused_temporarily += 1
                return "451 4.3.0 try again later"
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            login = session.auth_data.login.decode() if session.authenticated else None
            tls = server.transport.get_extra_info("ssl_object") is not None
            received = Received(
                envelope.mail_from, tuple(envelope.rcpt_tos), message, time.time(), tls, login
            )
            self.server.received.append(received)
        return "250 OK"


class MailServer:
    def __init__(
        self,
        port: int | None = None,
        latency_s: float = 0.0,
        security: str = "none",
        certificate: tuple[str, str] | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.security = security
        self.certificate = certificate  # (certfile, keyfile) for starttls or tls
        self.login = login
        self.port = port or free_port()
        self.latency_s = latency_s
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.temporary_refusals = 0  # the next n mails get a 451
        self.refused_temporarily = 0
        self.refused_addresses: set[str] = set()  # 550 at RCPT
        self.deferred_addresses: set[str] = set()  # 452 at RCPT, for as long as they are here
        self._controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if (
            self.login is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == self.login
        ):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    def start(self) -> MailServer:
        kwargs: dict[str, Any] = {}
        if self.security != "none":
            assert self.certificate is not None, "starttls and tls need a certificate"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.certificate)
            if self.security == "starttls":
                kwargs |= {"tls_context": context, "require_starttls": True}
            else:
                # aiosmtpd counts only STARTTLS as TLS for AUTH; this session is TLS throughout
                kwargs |= {"ssl_context": context, "auth_require_tls": False}
        if self.login is not None:
            # with implicit TLS a login is checked, not demanded: aiosmtpd would warn that
            # AUTH is required without STARTTLS, not knowing the session is TLS throughout
            kwargs |= {"authenticator": self._authenticate}
            kwargs["auth_required"] = self.security != "tls"
        controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def mails(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def copies(self) -> Counter[str]:
        """How many times each X-Rater-Notification-Id (with its tenant) arrived."""
        return Counter(
            f"{r.message['X-Rater-Tenant-Id']}/{r.message['X-Rater-Notification-Id']}"
            for r in self.mails()
        )

    def __enter__(self) -> MailServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
