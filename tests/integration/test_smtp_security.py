"""The mailer against a real SMTP server that demands STARTTLS or TLS and a login."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from rater.devkit.mail_server import MailServer
from rater.notifier.compose import compose
from rater.notifier.mailer import Accepted, SmtpMailer, SmtpSettings, Transient
from rater.notifier.notice import decode
from rater.notifier.render import render
from tests.support.notices import notification

LOGIN = ("rater", "s3cret")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (openssl must be installed)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def _mail():
    notice = decode(orjson.dumps(notification("credits_expiring", language="de")))
    return compose(notice, render(notice), "credits@rater.example")


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_encrypted_and_logged_in(security: str, certificate: tuple[str, str]) -> None:
    with MailServer(security=security, certificate=certificate, login=LOGIN) as server:
        mailer = SmtpMailer(SmtpSettings(
            host=server.host, port=server.port, security=security, username=LOGIN[0],
            password=LOGIN[1], timeout_s=10, cafile=certificate[0],
        ))  # fmt: skip
        try:
            assert isinstance(await mailer.send(_mail()), Accepted)
            assert isinstance(await mailer.send(_mail()), Accepted)  # on the kept connection
        finally:
            await mailer.close()
        [first, second] = server.mails()
        assert first.tls and first.login == "rater" and second.tls


async def test_a_wrong_password_is_retried_not_skipped(certificate: tuple[str, str]) -> None:
    with MailServer(security="starttls", certificate=certificate, login=LOGIN) as server:
        mailer = SmtpMailer(SmtpSettings(
            host=server.host, port=server.port, security="starttls", username="rater",
            password="wrong", timeout_s=10, cafile=certificate[0],
        ))  # fmt: skip
        with pytest.raises(Transient) as failure:
            await mailer.send(_mail())
        assert failure.value.reason == "auth" and server.count() == 0
        await mailer.close()


async def test_starttls_is_required_not_opportunistic(certificate: tuple[str, str]) -> None:
    """A server that offers no STARTTLS gets no mail in clear text from a starttls notifier."""
    with MailServer() as server:
        mailer = SmtpMailer(SmtpSettings(host=server.host, port=server.port, security="starttls"))
        with pytest.raises(Transient):
            await mailer.send(_mail())
        assert server.count() == 0
        await mailer.close()


async def test_an_untrusted_certificate_is_refused(certificate: tuple[str, str]) -> None:
    with MailServer(security="tls", certificate=certificate) as server:
        mailer = SmtpMailer(SmtpSettings(host=server.host, port=server.port, security="tls"))
        with pytest.raises(Transient):
            await mailer.send(_mail())
        assert server.count() == 0
        await mailer.close()


def test_the_certificate_files_exist(certificate: tuple[str, str]) -> None:
    assert all(Path(path).stat().st_size > 0 for path in certificate)
