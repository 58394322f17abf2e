"""The gateway's settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.guard import RateLimitPolicy
from gateway.ratelimit import parse_limits
from servicekit.config import (
    UPSTREAMS,
    env,
    env_float,
    env_int,
    jwt_settings,
    load_environment,
    redis_url,
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
    # Connections per upstream and worker; requests beyond wait for one.
    pool_size: int = 64
    # A pooled upstream connection is not reused after this many seconds, so new service
    # replicas behind one address get their share.
    pool_max_age: float = 60.0
    health_timeout: float = 1.0
    # The client side: the request head must arrive within head_timeout of its first
    # byte; the body within body_grace seconds plus its size at body_min_rate bytes/s.
    head_timeout: float = 10.0
    body_grace: float = 10.0
    body_min_rate: int = 16 * 1024
    # Bodies (requests and answers) larger than this are spooled to a temporary file.
    body_in_memory: int = 1024 * 1024
    idle_timeout: float = 30.0
    max_idle_connections: int = 1024
    max_connections_per_address: int = 256
    # Redis connections per worker; a request beyond them waits (up to a second) for one.
    redis_connections: int = 64
    # host:port of the internal listener for /metrics (never on the public one).
    metrics_bind: str | None = None
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: int = 0
    rate_limits: RateLimitPolicy = field(default_factory=RateLimitPolicy)
    breaker_failures: int = 5
    breaker_cooldown: float = 10.0
    token_cache_size: int = 10_000

    @classmethod
    def from_environment(cls) -> GatewayConfig:
        load_environment()
        jwt = jwt_settings()
        return cls(
            upstreams={name: service_url(name) for name in UPSTREAMS},
            redis_url=redis_url(),
            jwks_url=jwt["JWKS_URL"],
            issuer=jwt["JWT_ISSUER"],
            audience=jwt["JWT_AUDIENCE"],
            leeway=jwt["JWT_LEEWAY"],
            connect_timeout=env_float("GATEWAY_CONNECT_TIMEOUT", 1.0),
            read_timeout=env_float("GATEWAY_READ_TIMEOUT", 30.0),
            max_body=env_int("GATEWAY_MAX_BODY", 10 * 1024 * 1024),
            pool_size=env_int("GATEWAY_POOL_SIZE", 64),
            pool_max_age=env_float("GATEWAY_POOL_MAX_AGE", 60.0),
            health_timeout=env_float("GATEWAY_HEALTH_TIMEOUT", 1.0),
            head_timeout=env_float("GATEWAY_HEAD_TIMEOUT", 10.0),
            body_grace=env_float("GATEWAY_BODY_GRACE", 10.0),
            body_min_rate=env_int("GATEWAY_BODY_MIN_RATE", 16 * 1024),
            body_in_memory=env_int("GATEWAY_BODY_IN_MEMORY", 1024 * 1024),
            idle_timeout=env_float("GATEWAY_IDLE_TIMEOUT", 30.0),
            max_idle_connections=env_int("GATEWAY_MAX_IDLE_CONNECTIONS", 1024),
            max_connections_per_address=env_int("GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", 256),
            redis_connections=env_int("GATEWAY_REDIS_CONNECTIONS", 64),
            metrics_bind=env("GATEWAY_METRICS_BIND"),
            cors_origins=tuple((env("GATEWAY_CORS_ORIGINS", "") or "").split(",")),
            trusted_proxies=env_int("GATEWAY_TRUSTED_PROXIES", 0),
            rate_limits=rate_limits_from_environment(),
            breaker_failures=env_int("GATEWAY_BREAKER_FAILURES", 5),
            breaker_cooldown=env_float("GATEWAY_BREAKER_COOLDOWN", 10.0),
            token_cache_size=env_int("GATEWAY_TOKEN_CACHE_SIZE", 10_000),
        )


def rate_limits_from_environment() -> RateLimitPolicy:
    return RateLimitPolicy(
        address=parse_limits(env("GATEWAY_RATE_LIMIT", "600/minute")),
        user=parse_limits(env("GATEWAY_USER_RATE_LIMIT", "1200/minute")),
        login_address=parse_limits(env("GATEWAY_LOGIN_RATE_LIMIT", "30/minute")),
        login_user=parse_limits(env("GATEWAY_LOGIN_USER_RATE_LIMIT", "10/minute")),
    )
