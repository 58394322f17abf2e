"""Outgoing mail: the outbox folder, and SMTP against a real local server."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from flask import Flask

from auth_service.mail import Mailer, SmtpSettings, parse_smtp_url
from devstack.redis_server import free_port
from tests.auth_service.auth_helpers import outbox_messages, reset_token_in, wait_for
from tests.auth_service.auth_smtp import self_signed_certificate, smtp_server


def a_message(mailer: Mailer) -> object:
    return mailer.message("someone@example.org", "Hello", "A body\nof two lines.\n")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.org", SmtpSettings("mail.example.org", 25, "plain")),
        ("smtp://127.0.0.1:2525", SmtpSettings("127.0.0.1", 2525, "plain")),
        (
            "smtp+starttls://me%40x.org:p%3Ass@mail.example.org",
            SmtpSettings("mail.example.org", 587, "starttls", "me@x.org", "p:ss"),
        ),
        (
            "smtps://u:p@mail.example.org:4650",
            SmtpSettings("mail.example.org", 4650, "tls", "u", "p"),
        ),
    ],
)
def test_parse_smtp_url(url: str, expected: SmtpSettings) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["http://mail.example.org", "smtp://", "smtp://u:p@mail.example.org", "smtp://host:notaport"],
)
def test_parse_smtp_url_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        parse_smtp_url(url)


def test_an_invalid_smtp_url_fails_at_start(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(RuntimeError, match="SMTP_URL"):
        make_app(SMTP_URL="smtp://user:secret@mail.example.org")


def test_the_outbox_gets_one_file_per_message(tmp_path: Path) -> None:
    mailer = Mailer("Flotilla <no-reply@localhost>", tmp_path / "outbox")
    try:
        mailer.send(a_message(mailer)).result(timeout=10)  # type: ignore[arg-type]
        mailer.send(a_message(mailer)).result(timeout=10)  # type: ignore[arg-type]
    finally:
        mailer.close()

    files = outbox_messages(tmp_path / "outbox")
    assert len(files) == 2
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == [p.name for p in files]
    assert files[0].stat().st_mode & 0o077 == 0
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["To"] == "someone@example.org"
    assert message["From"] == "Flotilla <no-reply@localhost>"
    assert message.get_content() == "A body\nof two lines.\n"  # type: ignore[attr-defined]


def test_smtp_delivery(tmp_path: Path) -> None:
    with smtp_server() as (inbox, port):
        mailer = Mailer("no-reply@localhost", tmp_path, parse_smtp_url(f"smtp://127.0.0.1:{port}"))
        try:
            mailer.send(a_message(mailer)).result(timeout=10)  # type: ignore[arg-type]
        finally:
            mailer.close()

        assert inbox.arrived.wait(timeout=5)
    (message,) = inbox.messages
    assert message["Subject"] == "Hello"
    assert message["To"] == "someone@example.org"
    assert outbox_messages(tmp_path) == []


def test_smtp_with_starttls_and_login(tmp_path: Path) -> None:
    certificate = self_signed_certificate(tmp_path)
    with smtp_server(certificate, credentials=("mailer", "s3cret")) as (inbox, port):
        settings = parse_smtp_url(f"smtp+starttls://mailer:s3cret@127.0.0.1:{port}")
        mailer = Mailer(
            "no-reply@localhost", tmp_path, settings, ca_file=str(certificate.cert_file)
        )
        try:
            mailer.send(a_message(mailer)).result(timeout=10)  # type: ignore[arg-type]
        finally:
            mailer.close()

    assert [m["Subject"] for m in inbox.messages] == ["Hello"]
    assert inbox.logins == ["mailer"]


def test_smtp_certificates_are_verified(tmp_path: Path) -> None:
    certificate = self_signed_certificate(tmp_path)
    with smtp_server(certificate) as (inbox, port):
        settings = parse_smtp_url(f"smtp+starttls://127.0.0.1:{port}")
        mailer = Mailer("no-reply@localhost", tmp_path, settings)  # no CA for that certificate
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                mailer.deliver(a_message(mailer))  # type: ignore[arg-type]
        finally:
            mailer.close()

    assert inbox.messages == []


def test_a_failed_delivery_is_logged_not_raised_in_the_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mailer = Mailer(
        "no-reply@localhost", tmp_path, parse_smtp_url(f"smtp://127.0.0.1:{free_port()}")
    )
    try:
        future = mailer.send(a_message(mailer))  # type: ignore[arg-type]
        assert isinstance(future.exception(timeout=10), OSError)
    finally:
        mailer.close()

    assert wait_for(lambda: any(r.message == "mail delivery failed" for r in caplog.records))


def test_password_reset_mail_over_smtp(make_app: Callable[..., Flask], outbox: Path) -> None:
    with smtp_server() as (inbox, port):
        app = make_app(SMTP_URL=f"smtp://127.0.0.1:{port}")
        client = app.test_client()
        client.post(
            "/users/",
            json={
                "username": "mailed",
                "email": "mailed@example.org",
                "password": "first password",
            },
        )

        assert client.post("/users/mailed/password/reset").status_code == 202
        assert inbox.arrived.wait(timeout=5)

    (message,) = inbox.messages
    assert message["To"] == "mailed@example.org"
    token = reset_token_in(message.get_content())  # type: ignore[attr-defined]
    response = client.patch(
        "/users/mailed/password/", json={"resetToken": token, "newPassword": "second password"}
    )
    assert response.status_code == 200
    assert outbox_messages(outbox) == []
