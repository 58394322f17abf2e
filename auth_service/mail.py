"""auth_service's outgoing mail: servicekit's mailer (SMTP when `SMTP_URL` is set, else
the local outbox folder). The messages themselves are written where they are sent
(resets.py)."""

from servicekit.mail import Mailer, SmtpSettings, parse_smtp_url

__all__ = ["Mailer", "SmtpSettings", "parse_smtp_url"]
