"""Outgoing mail, once for every service: SMTP when `SMTP_URL` is set, else one `.eml`
file per message in the outbox folder (`MAIL_OUTBOX_DIR`).

`SMTP_URL` forms: `smtp://host[:25]` (no credentials over a plain connection),
`smtp+starttls://[user:password@]host[:587]`, `smtps://[user:password@]host[:465]`.
TLS certificates are verified (`SMTP_CA_FILE` adds a private CA).

`Mailer.send` delivers through a small background pool, so a request neither waits for a
delivery nor reveals by its timing whether one happened (auth_service's password resets);
a failed delivery is logged. `Mailer.deliver` delivers now and raises on failure (for an
RQ job, which is retried).

A service declares the mail settings (`SMTP_URL` with `check=smtp_url_problem` and
`secret=True`, `SMTP_TIMEOUT`, `SMTP_CA_FILE`, `MAIL_FROM`, `MAIL_OUTBOX_DIR`) in its
settings class and builds its mailer with `Mailer.from_settings`.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import tempfile
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

SECURITY_BY_SCHEME = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}
DEFAULT_PORTS = {"plain": 25, "starttls": 587, "tls": 465}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # "plain", "starttls" or "tls"
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpSettings:
    """`SMTP_URL` as settings; ValueError says what is wrong with it (never its secrets)."""
    parts = urlsplit(url)
    security = SECURITY_BY_SCHEME.get(parts.scheme.lower())
    if security is None:
        raise ValueError("must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ValueError("names no host")
    try:
        port = parts.port or DEFAULT_PORTS[security]
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
    username = unquote(parts.username) if parts.username else None
    if username and security == "plain":
        raise ValueError("send credentials over smtp+starttls:// or smtps:// only")
    password = unquote(parts.password) if parts.password else None
    return SmtpSettings(parts.hostname, port, security, username, password)


def smtp_url_problem(url: str) -> str | None:
    """A settings check: what is wrong with an `SMTP_URL`, or None."""
    try:
        parse_smtp_url(url)
    except ValueError as exc:
        return str(exc)
    return None


class MailSettings(Protocol):
    """The mail fields of a service's settings class."""

    @property
    def smtp_url(self) -> str | None: ...
    @property
    def smtp_timeout(self) -> float: ...
    @property
    def smtp_ca_file(self) -> Path | None: ...
    @property
    def mail_from(self) -> str: ...
    @property
    def mail_outbox_dir(self) -> Path: ...


class Mailer:
    def __init__(
        self,
        sender: str,
        outbox: Path,
        smtp: SmtpSettings | None = None,
        *,
        timeout: float = 10.0,
        ca_file: str | None = None,
    ) -> None:
        self.sender = sender
        self.outbox = Path(outbox)
        self.smtp = smtp
        self.timeout = timeout
        self.ca_file = ca_file
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mail")

    @classmethod
    def from_settings(cls, settings: MailSettings) -> Mailer:
        """The mailer of the settings (their `SMTP_URL` was checked when they were loaded)."""
        return cls(
            settings.mail_from,
            settings.mail_outbox_dir,
            parse_smtp_url(settings.smtp_url) if settings.smtp_url else None,
            timeout=settings.smtp_timeout,
            ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        )

    def message(self, to: str, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = f"<{uuid.uuid4().hex}@flotilla>"
        message.set_content(body)
        return message

    def send(self, message: EmailMessage) -> Future[None]:
        """Deliver in the background; the returned future tells when it is done."""
        future = self._pool.submit(self.deliver, message)
        future.add_done_callback(_log_failure)
        return future

    def deliver(self, message: EmailMessage) -> None:
        if self.smtp is None:
            self._write_to_outbox(message)
        else:
            self._send_over_smtp(self.smtp, message)

    def _write_to_outbox(self, message: EmailMessage) -> None:
        """Written under a temporary name, then renamed: a reader never sees half a file."""
        self.outbox.mkdir(parents=True, exist_ok=True)
        now = time.time_ns()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 10**9))
        name = f"{stamp}.{now % 10**9:09d}Z-{uuid.uuid4().hex[:12]}.eml"  # sorts by time
        descriptor, temporary = tempfile.mkstemp(dir=self.outbox, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:  # 0600: messages may hold secrets
                handle.write(message.as_bytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.outbox / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _send_over_smtp(self, smtp: SmtpSettings, message: EmailMessage) -> None:
        context = ssl.create_default_context(cafile=self.ca_file)
        client: smtplib.SMTP
        if smtp.security == "tls":
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=self.timeout)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=context)
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            client.send_message(message)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _log_failure(future: Future[None]) -> None:
    error = future.exception()
    if error is not None:
        log.error("mail delivery failed", extra={"error": f"{type(error).__name__}: {error}"})
