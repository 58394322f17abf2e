"""auth_service's settings (servicekit.settings loads and checks them at start).

The suite-wide ones (`REDIS_URL`, `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_LEEWAY`,
`SERVICE_SECRET`, ...) are servicekit's Flask config, not repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from auth_service.throttle import Limit, parse_limit
from servicekit.config import service_url, var_dir
from servicekit.mail import smtp_url_problem
from servicekit.settings import setting
from servicekit.users import DEFAULT_USER_STREAM

MIB = 1024 * 1024
MIN_RETENTION = 3600  # seconds: shorter would trim entries before a consumer could read them


def limit_problem(text: str) -> str | None:
    """A mistyped limit stops the start, not the first login."""
    try:
        parse_limit(text)
    except ValueError as exc:
        return f"must be a limit like '10/15 minutes' or 'off': {exc}"
    return None


def positive(value: float) -> str | None:
    return None if value > 0 else f"must be more than 0, got {value!r}"


def not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


@dataclass(frozen=True)
class AuthSettings:
    # Signing keys: the folder of rotating keys, or one key file (then the only key).
    keys_dir: Path = setting("JWT_KEYS_DIR", lambda: var_dir() / "keys")
    # False: JWT_KEYS_DIR is a read-only mount; its keys are used, none is ever written.
    generate_keys: bool = setting("JWT_GENERATE_KEYS", True)
    private_key_file: Path | None = setting("JWT_PRIVATE_KEY_FILE", None)
    access_ttl: int = setting("JWT_ACCESS_TTL", 900, minimum=1)
    refresh_ttl: int = setting("JWT_REFRESH_TTL", 7 * 24 * 3600, minimum=1)
    # The image API's tokens (seed 003 had tokens that never expired).
    api_token_ttl: int = setting("API_TOKEN_TTL", 30 * 24 * 3600, minimum=1)
    api_tokens_per_user: int = setting("API_TOKENS_PER_USER", 10, minimum=1)
    # Failed attempts, in the limits-string syntax; "off" disables one.
    login_limit_per_username: str = setting(
        "LOGIN_RATE_LIMIT_USERNAME", "10/15 minutes", check=limit_problem
    )
    login_limit_per_address: str = setting(
        "LOGIN_RATE_LIMIT_ADDRESS", "100/15 minutes", check=limit_problem
    )
    reset_limit_per_username: str = setting(
        "PASSWORD_RESET_RATE_LIMIT_USERNAME", "5/hour", check=limit_problem
    )
    reset_limit_per_address: str = setting(
        "PASSWORD_RESET_RATE_LIMIT_ADDRESS", "50/hour", check=limit_problem
    )
    reset_ttl: int = setting("PASSWORD_RESET_TTL", 3600, minimum=1)
    # Mail: SMTP when set (its URL may hold credentials), else files in the outbox folder.
    smtp_url: str | None = setting("SMTP_URL", None, check=smtp_url_problem, secret=True)
    smtp_timeout: float = setting("SMTP_TIMEOUT", 10.0, check=positive)
    smtp_ca_file: Path | None = setting("SMTP_CA_FILE", None)
    mail_from: str = setting("MAIL_FROM", "Flotilla <no-reply@localhost>", check=not_empty)
    mail_outbox_dir: Path = setting("MAIL_OUTBOX_DIR", lambda: var_dir() / "outbox")
    # Profile pictures are kept by media_service's internal file store.
    media_service_url: str = setting("MEDIA_SERVICE_URL", lambda: service_url("media"))
    media_read_timeout: float = setting("MEDIA_READ_TIMEOUT", 10.0, check=positive)
    picture_max_bytes: int = setting("PROFILE_PICTURE_MAX_BYTES", 5 * MIB, minimum=1)
    # RFC 9106's second recommended option: 3 passes over 64 MiB, 4 lanes (argon2 needs
    # at least 8 KiB per lane: passwords.PasswordHashing checks that at start).
    hash_time_cost: int = setting("PASSWORD_HASH_TIME_COST", 3, minimum=1)
    hash_memory_kib: int = setting("PASSWORD_HASH_MEMORY_KIB", 64 * 1024, minimum=8)
    hash_parallelism: int = setting("PASSWORD_HASH_PARALLELISM", 4, minimum=1)
    # The user lifecycle stream (outbox.py, relay.py): name, retention, relay pause.
    user_events_stream: str = setting("USER_EVENTS_STREAM", DEFAULT_USER_STREAM, check=not_empty)
    user_events_retention: int = setting(
        "USER_EVENTS_RETENTION", 7 * 24 * 3600, minimum=MIN_RETENTION
    )
    user_events_relay_interval: float = setting("USER_EVENTS_RELAY_INTERVAL", 1.0, check=positive)

    @property
    def login_limits(self) -> tuple[Limit | None, Limit | None]:
        """Failed logins per username and per client address (None: not limited)."""
        return parse_limit(self.login_limit_per_username), parse_limit(self.login_limit_per_address)

    @property
    def reset_limits(self) -> tuple[Limit | None, Limit | None]:
        """Reset requests per username and per client address (None: not limited)."""
        return parse_limit(self.reset_limit_per_username), parse_limit(self.reset_limit_per_address)

    @property
    def longest_token_ttl(self) -> int:
        """How long any token of this issuer can be valid, clock leeway not included."""
        return max(self.access_ttl, self.refresh_ttl, self.api_token_ttl)
