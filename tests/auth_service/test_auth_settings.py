"""auth_service's settings: one typed object, every value checked at start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from auth_service.context import auth_context
from auth_service.settings import AuthSettings
from auth_service.throttle import Limit
from servicekit.settings import SettingsError, describe, load_settings


def test_settings_come_from_the_config_by_variable_name(make_app: Callable[..., Flask]) -> None:
    app = make_app(API_TOKENS_PER_USER=3, LOGIN_RATE_LIMIT_USERNAME="4/minute")

    settings = auth_context(app).settings

    assert isinstance(settings, AuthSettings)
    assert settings.api_tokens_per_user == 3
    assert settings.login_limits == (Limit(4, 60), Limit(100, 900))


def test_every_bad_value_is_named_at_start(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(SettingsError) as refused:
        make_app(
            JWT_ACCESS_TTL=0,
            API_TOKENS_PER_USER="many",
            PASSWORD_RESET_RATE_LIMIT_ADDRESS="lots",
            SMTP_TIMEOUT=0,
            USER_EVENTS_STREAM=" ",
        )

    message = str(refused.value)
    assert "JWT_ACCESS_TTL: must be at least 1, got 0" in message
    assert "API_TOKENS_PER_USER: must be an integer, got 'many'" in message
    assert "PASSWORD_RESET_RATE_LIMIT_ADDRESS: must be a limit like '10/15 minutes'" in message
    assert "SMTP_TIMEOUT: must be more than 0, got 0.0" in message
    assert "USER_EVENTS_STREAM: must not be empty" in message


def test_hashing_memory_must_cover_every_lane(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(SettingsError, match="PASSWORD_HASH_MEMORY_KIB: must be at least 32"):
        make_app(PASSWORD_HASH_MEMORY_KIB=16, PASSWORD_HASH_PARALLELISM=4)


def test_the_smtp_url_is_checked_and_kept_out_of_descriptions(tmp_path: Path) -> None:
    url = "smtps://mailer:s3cret@mail.example.org"
    settings = load_settings(AuthSettings, {"SMTP_URL": url, "JWT_KEYS_DIR": str(tmp_path)})

    assert settings.smtp_url == url
    assert describe(settings)["SMTP_URL"] == "***"
    with pytest.raises(SettingsError) as refused:
        load_settings(AuthSettings, {"SMTP_URL": "smtp://mailer:s3cret@mail.example.org"})
    assert "SMTP_URL: send credentials over smtp+starttls:// or smtps:// only" in str(refused.value)
    assert "s3cret" not in str(refused.value)
