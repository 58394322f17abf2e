"""One way to turn `REDIS_URL` into a Redis client, plain or behind Redis Sentinel.

`redis://…`, `rediss://…` and `unix://…` URLs go to redis-py's `from_url` as they are. A
Sentinel deployment is named by one URL of its own:

    redis+sentinel://[[username]:password@]host[:port][,host[:port]…]/service[/db]
                     [?sentinel_username=…&sentinel_password=…]

- `host[:port]`: one or more Sentinels, comma-separated (port 26379 unless given; an IPv6
  address in brackets, `[::1]:26379`);
- `service`: the master's name in the Sentinels' configuration (`sentinel monitor <name> …`);
- `db`: the database number, 0 unless given;
- `username`/`password` (percent-encoded): the Redis servers' credentials (master and
  replicas), as in a `redis://` URL;
- `sentinel_username`/`sentinel_password`: the Sentinels' own, when they require one
  (`requirepass` in sentinel.conf); no other query option is accepted.

The client redis-py's `Sentinel(...).master_for(service)` returns asks the Sentinels for the
current master on every new connection, and drops a connection to a master that was demoted
(a write answered READONLY), so it follows a failover. One setting carries the whole address:
every process that is handed `REDIS_URL` (services, workers, stream consumers, the gateway,
the tests' stacks, compose and Kubernetes secrets) understands a Sentinel deployment unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio
import redis.asyncio.sentinel
import redis.connection
from redis import Redis
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_OPTIONS = frozenset({"sentinel_username", "sentinel_password"})
# Options of a connection that also apply to the connections to the Sentinels.
SHARED_OPTIONS = ("socket_timeout", "socket_connect_timeout", "socket_keepalive")
# RQ's workers talk to Redis without timeouts (`rq worker --url` sets none); a Sentinel that
# does not answer is skipped after this long rather than waited for.
RQ_SENTINEL_OPTIONS = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}


@dataclass(frozen=True)
class SentinelAddress:
    """A `redis+sentinel://` URL, parsed."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def server_options(self) -> dict[str, Any]:
        """What a connection to the master needs besides its address."""
        return {"db": self.db, "username": self.username, "password": self.password}

    def sentinel_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The Sentinels' connection options: the caller's timeouts, their own credentials."""
        shared = {name: options[name] for name in SHARED_OPTIONS if name in options}
        return {
            **shared,
            "username": self.sentinel_username,
            "password": self.sentinel_password,
        }


PLAIN_SCHEMES = frozenset({"redis", "rediss", "unix"})


def redis_url_problem(url: str) -> str | None:
    """Why `url` cannot be a Redis URL (never quoting its password), or None."""
    if is_sentinel_url(url):
        try:
            parse_sentinel_url(url)
        except ValueError as exc:
            return str(exc)
        return None
    if url.partition("://")[0].lower() not in PLAIN_SCHEMES:
        schemes = ", ".join(f"{name}://" for name in sorted(PLAIN_SCHEMES | {SENTINEL_SCHEME}))
        return f"must start with one of {schemes}"
    try:
        redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError:
        return "is not a valid Redis URL"
    return None


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0].lower() == SENTINEL_SCHEME


def parse_sentinel_url(url: str) -> SentinelAddress:
    """The parts of a `redis+sentinel://` URL; ValueError naming what is wrong (never the
    password)."""
    scheme, separator, rest = url.partition("://")
    if scheme.lower() != SENTINEL_SCHEME or not separator:
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}://")
    rest, _, query = rest.partition("?")
    rest, _, fragment = rest.partition("#")
    if fragment:
        raise ValueError("a Sentinel URL has no fragment")
    location, _, path = rest.partition("/")
    userinfo, _, hosts = location.rpartition("@")
    username, password = _credentials(userinfo)
    service, db = _service_and_db(path)
    return SentinelAddress(
        sentinels=tuple(_sentinel(host) for host in hosts.split(",")),
        service=service,
        db=db,
        username=username,
        password=password,
        **_sentinel_credentials(query),
    )


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    username, has_password, password = userinfo.partition(":")
    return unquote(username) or None, unquote(password) if has_password else None


def _sentinel(host: str) -> tuple[str, int]:
    if not host:
        raise ValueError("a Sentinel URL names at least one Sentinel host[:port], comma-separated")
    try:
        parts = urlsplit(f"//{host}")
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"a Sentinel address is host[:port]: {host!r}") from exc
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise ValueError(f"a Sentinel address is host[:port]: {host!r}")
    return parts.hostname, port or DEFAULT_SENTINEL_PORT


def _service_and_db(path: str) -> tuple[str, int]:
    service, _, db = path.partition("/")
    service = unquote(service)
    if not service:
        raise ValueError("a Sentinel URL names the master's service: redis+sentinel://…/<service>")
    if db in ("", "/"):
        return service, 0
    if not db.isdigit():
        raise ValueError(f"the database of a Sentinel URL is a number: {db!r}")
    return service, int(db)


def _sentinel_credentials(query: str) -> dict[str, str | None]:
    options = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    unknown = set(options) - SENTINEL_OPTIONS
    if unknown:
        names = ", ".join(sorted(unknown))
        allowed = ", ".join(sorted(SENTINEL_OPTIONS))
        raise ValueError(f"unknown Sentinel URL option(s): {names} (allowed: {allowed})")
    return {name: values[-1] or None for name, values in options.items()}


def redis_from_url(url: str, **options: Any) -> Redis:
    """A client of the Redis `url` names (`options` as redis-py's, e.g. timeouts); behind
    Sentinel, one that follows the current master."""
    if not is_sentinel_url(url):
        return Redis.from_url(url, **options)
    address = parse_sentinel_url(url)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        address.sentinels,
        sentinel_kwargs=address.sentinel_options(options),
        **address.server_options(),
        **options,
    )
    client = sentinel.master_for(address.service)  # type: ignore[no-untyped-call]
    return cast(Redis, client)


class SentinelBlockingConnectionPool(
    redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool
):
    """redis-py's Sentinel-managed pool (master discovery, demoted masters dropped) with the
    waiting of its BlockingConnectionPool: a burst past `max_connections` waits up to
    `timeout` for a connection instead of failing. Neither class overrides what the other
    defines, so each keeps its own behaviour."""


def async_redis_from_url(
    url: str, *, max_connections: int, pool_timeout: float, **options: Any
) -> redis.asyncio.Redis:
    """An asyncio client with at most `max_connections` connections; a command waits up to
    `pool_timeout` seconds for one. Behind Sentinel, one that follows the current master."""
    if not is_sentinel_url(url):
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=pool_timeout, **options
        )
        return redis.asyncio.Redis(connection_pool=pool)
    address = parse_sentinel_url(url)
    sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        address.sentinels,
        sentinel_kwargs=address.sentinel_options(options),
        **address.server_options(),
        **options,
    )
    client = sentinel.master_for(
        address.service,
        connection_pool_class=SentinelBlockingConnectionPool,
        max_connections=max_connections,
        timeout=pool_timeout,
    )
    return cast(redis.asyncio.Redis, client)


def rq_settings(url: str) -> dict[str, Any]:
    """RQ's own connection settings for `url` (what `rq worker --config` reads): `REDIS_URL`
    for a plain URL, RQ's `SENTINEL` dictionary (built into the same `master_for` client by
    RQ) for a Sentinel URL."""
    if not is_sentinel_url(url):
        return {"REDIS_URL": url}
    address = parse_sentinel_url(url)
    return {
        "SENTINEL": {
            "INSTANCES": list(address.sentinels),
            "MASTER_NAME": address.service,
            "DB": address.db,
            "USERNAME": address.username,
            "PASSWORD": address.password,
            "SENTINEL_KWARGS": address.sentinel_options(RQ_SENTINEL_OPTIONS),
        }
    }
