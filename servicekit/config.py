"""Configuration from the environment (and an optional `.env`), one place for every service."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

REPO_ROOT = Path(__file__).resolve().parent.parent

SERVICE_PORTS: dict[str, int] = {
    "gateway": 8000,
    "auth": 8001,
    "events": 8002,
    "tickets": 8003,
    "activity": 8004,
    "media": 8005,
    "datapoints": 8006,
    "scheduler": 8007,
}
UPSTREAMS: tuple[str, ...] = tuple(name for name in SERVICE_PORTS if name != "gateway")
# The gateway's internal listener (/metrics), never exposed to clients.
GATEWAY_METRICS_PORT = 8009

_dotenv_loaded = False


def load_environment() -> None:
    """Read `.env` from the repository root once; real environment variables win."""
    global _dotenv_loaded
    if not _dotenv_loaded:
        load_dotenv(REPO_ROOT / ".env", override=False)
        _dotenv_loaded = True


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    raw = env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be a number, got {raw!r}") from exc


def var_dir() -> Path:
    """Where runtime files live (SQLite databases, dev keys, outbox, media)."""
    return Path(env("FLOTILLA_VAR_DIR", str(REPO_ROOT / "var")) or "var")


def service_url(name: str) -> str:
    """Internal base URL of a service: `<NAME>_SERVICE_URL`, else its loopback port."""
    default = f"http://127.0.0.1:{SERVICE_PORTS[name]}"
    return (env(f"{name.upper()}_SERVICE_URL", default) or default).rstrip("/")


def database_url(name: str) -> str:
    default = f"sqlite:///{var_dir() / f'{name}.db'}"
    return env(f"{name.upper()}_DATABASE_URL", default) or default


def jwt_settings() -> dict[str, Any]:
    """Token settings shared by the issuer (auth_service), every service and the gateway."""
    return {
        "JWT_ISSUER": env("JWT_ISSUER", "flotilla"),
        "JWT_AUDIENCE": env("JWT_AUDIENCE", "flotilla"),
        "JWT_LEEWAY": env_int("JWT_LEEWAY", 30),
        "JWKS_URL": env("JWKS_URL", f"{service_url('auth')}/.well-known/jwks.json"),
    }


def service_config(name: str) -> dict[str, Any]:
    """The Flask config of a service, from the environment."""
    load_environment()
    return {
        "SERVICE_NAME": name,
        "SQLALCHEMY_DATABASE_URI": database_url(name),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": env("REDIS_URL"),
        "MAX_CONTENT_LENGTH": env_int("MAX_CONTENT_LENGTH", 10 * 1024 * 1024),
        "LOG_LEVEL": env("LOG_LEVEL", "INFO"),
        "SERVICE_SECRET": env("SERVICE_SECRET"),
        **jwt_settings(),
    }
