"""The gateway's settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from servicekit.config import (
    UPSTREAMS,
    env,
    env_float,
    env_int,
    jwt_settings,
    load_environment,
    service_url,
)


@dataclass(frozen=True)
class GatewayConfig:
    upstreams: dict[str, str] = field(default_factory=dict)
    redis_url: str | None = None
    jwks_url: str = ""
    issuer: str = "flotilla"
    audience: str = "flotilla"
    leeway: int = 30
    connect_timeout: float = 1.0
    read_timeout: float = 30.0
    max_body: int = 10 * 1024 * 1024
    pool_size: int = 32
    health_timeout: float = 1.0

    @classmethod
    def from_environment(cls) -> GatewayConfig:
        load_environment()
        jwt = jwt_settings()
        return cls(
            upstreams={name: service_url(name) for name in UPSTREAMS},
            redis_url=env("REDIS_URL"),
            jwks_url=jwt["JWKS_URL"],
            issuer=jwt["JWT_ISSUER"],
            audience=jwt["JWT_AUDIENCE"],
            leeway=jwt["JWT_LEEWAY"],
            connect_timeout=env_float("GATEWAY_CONNECT_TIMEOUT", 1.0),
            read_timeout=env_float("GATEWAY_READ_TIMEOUT", 30.0),
            max_body=env_int("GATEWAY_MAX_BODY", 10 * 1024 * 1024),
            pool_size=env_int("GATEWAY_POOL_SIZE", 32),
            health_timeout=env_float("GATEWAY_HEALTH_TIMEOUT", 1.0),
        )
