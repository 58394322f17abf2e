"""tickets_service's settings (servicekit.settings loads and checks them at start).

The suite-wide ones (`REDIS_URL`, `SERVICE_SECRET`, `AUTH_SERVICE_URL`,
`USER_DIRECTORY_TTL`, ...) are servicekit's Flask config, not repeated here. The mail
settings are auth_service's (servicekit.mail): one SMTP server and one local outbox for
the suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servicekit.config import var_dir
from servicekit.mail import smtp_url_problem
from servicekit.settings import setting

# A title, a 10,000-character description and JSON's escapes (6 bytes for some characters).
MAX_BODY = 128 * 1024


def positive(value: float) -> str | None:
    return None if value > 0 else f"must be more than 0, got {value!r}"


def not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


@dataclass(frozen=True)
class TicketsSettings:
    # Abuse limits per user and hour (0: no limit). Staff replies are not limited.
    tickets_per_hour: int = setting("TICKETS_PER_HOUR", 10, minimum=0)
    comments_per_hour: int = setting("TICKET_COMMENTS_PER_HOUR", 60, minimum=0)
    # Mail to openers: SMTP when set (its URL may hold credentials), else the outbox folder.
    smtp_url: str | None = setting("SMTP_URL", None, check=smtp_url_problem, secret=True)
    smtp_timeout: float = setting("SMTP_TIMEOUT", 10.0, check=positive)
    smtp_ca_file: Path | None = setting("SMTP_CA_FILE", None)
    mail_from: str = setting("MAIL_FROM", "Flotilla <no-reply@localhost>", check=not_empty)
    mail_outbox_dir: Path = setting("MAIL_OUTBOX_DIR", lambda: var_dir() / "outbox")

    def flask_config(self) -> dict[str, Any]:
        return {"MAX_CONTENT_LENGTH": MAX_BODY}
