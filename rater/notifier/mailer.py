"""SMTP delivery with aiosmtplib, each outcome classed for the delivery loop (SPEC 10).

Three outcomes only, because the loop acts on three: the server accepted the
mail (:class:`Accepted`), refused it for good for this message or address
(:class:`Refused`, a 5xx on RCPT or DATA: recorded, counted, skipped), or
anything else (:class:`Transient`: 4xx, a refused connection, a timeout, a
failed login, a refused sender), which is retried and never skipped. A
refused sender or login is a 5xx too, but it says the notifier's own
configuration is wrong, not one address: skipping would lose every notice,
retrying only grows the lag until an operator fixes it.

Connections are kept and reused while they work (one per send in flight),
so a burst does not pay a TCP and TLS handshake per mail; a connection that
saw any error is closed, never reused.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from email.message import Message
from typing import Protocol

import aiosmtplib
from aiosmtplib import errors

SECURITY_MODES = ("none", "starttls", "tls")


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    timeout_s: float = 30.0
    cafile: str | None = None


@dataclass(frozen=True)
class Accepted:
    response: str


@dataclass(frozen=True)
class Refused:
    """A permanent refusal of this message (5xx); ``code`` is the server's reply code."""

    code: int
    message: str


class Transient(Exception):
    """Worth a retry; ``reason`` is the metric label (temporary, unreachable, timeout, ...)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class Mailer(Protocol):
    async def send(self, mail: Message) -> Accepted | Refused: ...

    async def close(self) -> None: ...


def classify(exc: BaseException) -> Refused | Transient:
    """What an aiosmtplib error means for the notice (see the module docstring)."""
    if isinstance(exc, errors.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients] or [0]
        if all(500 <= code < 600 for code in codes):
            return Refused(codes[0], "; ".join(r.message for r in exc.recipients))
        return Transient("temporary", str(exc))
    if isinstance(exc, errors.SMTPAuthenticationError):
        return Transient("auth", f"{exc.code} {exc.message}")
    if isinstance(exc, errors.SMTPSenderRefused):
        return Transient("sender_refused", f"{exc.code} {exc.message}")
    if isinstance(exc, errors.SMTPTimeoutError | TimeoutError):
        return Transient("timeout", str(exc) or type(exc).__name__)
    if isinstance(exc, errors.SMTPRecipientRefused | errors.SMTPDataError):
        if 500 <= exc.code < 600:
            return Refused(exc.code, exc.message)
        return Transient("temporary", f"{exc.code} {exc.message}")
    if isinstance(exc, errors.SMTPResponseException):
        # HELO, connect greeting, a reply out of turn: the session, not the address
        return Transient("temporary", f"{exc.code} {exc.message}")
    if isinstance(exc, errors.SMTPServerDisconnected | errors.SMTPConnectError | OSError):
        return Transient("unreachable", str(exc) or type(exc).__name__)
    return Transient("error", f"{type(exc).__name__}: {exc}")


class SmtpMailer:
    """The :class:`Mailer` over aiosmtplib, with a pool of connected clients."""

    def __init__(self, settings: SmtpSettings) -> None:
        if settings.security not in SECURITY_MODES:
            raise ValueError(f"SMTP security {settings.security!r}: one of {SECURITY_MODES}")
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._tls_context = (
            ssl.create_default_context(cafile=settings.cafile) if settings.cafile else None
        )

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            # login only with both: a user without a password is a configuration slip
            username=s.username if s.username and s.password else None,
            password=s.password if s.username and s.password else None,
            timeout=s.timeout_s,
            use_tls=s.security == "tls",
            # "none" must never upgrade by itself; "starttls" must not go on in clear text
            start_tls=s.security == "starttls",
            tls_context=self._tls_context,
        )

    async def _connected(self) -> aiosmtplib.SMTP:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client
        client = self._client()
        await client.connect()  # greets, STARTTLS or TLS, and logs in when configured
        return client

    async def send(self, mail: Message) -> Accepted | Refused:
        """Send one mail; raises :class:`Transient` for anything worth a retry."""
        client: aiosmtplib.SMTP | None = None
        try:
            # one deadline for the whole exchange: a server that trickles replies is a timeout
            async with asyncio.timeout(self.settings.timeout_s * 2):
                client = await self._connected()
                refused, response = await client.send_message(mail)
        except asyncio.CancelledError:
            if client is not None:
                client.close()
            raise
        except Exception as exc:  # every failure is classed; none may escape unclassed
            if client is not None:
                client.close()
            outcome = classify(exc)
            if isinstance(outcome, Transient):
                raise outcome from exc
            return outcome
        if refused:  # one recipient per mail: a partial refusal cannot happen, but be exact
            code, message = next(iter(refused.values()))
            self._idle.append(client)
            if 500 <= code < 600:
                return Refused(code, message)
            raise Transient("temporary", f"{code} {message}")
        self._idle.append(client)
        return Accepted(response)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit()
            except Exception:  # closing anyway; a server that is gone needs no QUIT
                client.close()
