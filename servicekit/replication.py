"""Writes that must survive a Redis failover: confirmed by the replicas before they count.

Redis replicates asynchronously: a write the master acknowledged can be lost when the
master dies before sending it on, and the replica that takes over never saw it. For the
few writes whose loss would undo a promise — a token revocation (the token would work
again), a stream entry whose outbox row is then deleted (the event would be lost) — the
writer asks the master to wait until `REDIS_WAIT_REPLICAS` replicas hold everything so
far (Redis `WAIT`), for at most `REDIS_WAIT_TIMEOUT_MS`. 0 replicas (the default, a Redis
without replicas) waits for nothing. A wait that times out is logged, not raised: the
write is on the master, and what it means for each caller is said where it is called.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

from redis import Redis

from servicekit.config import ConfigError, env_int, load_environment

log = logging.getLogger("flotilla.redis")

FENCE_KEY = "flotilla:replication-fence"


@dataclass(frozen=True)
class Replication:
    replicas: int = 0
    timeout_ms: int = 500


@cache
def replication() -> Replication:
    """This process's `REDIS_WAIT_REPLICAS` and `REDIS_WAIT_TIMEOUT_MS`, checked once."""
    load_environment()
    settings = Replication(env_int("REDIS_WAIT_REPLICAS", 0), env_int("REDIS_WAIT_TIMEOUT_MS", 500))
    if settings.replicas < 0:
        raise ConfigError(f"REDIS_WAIT_REPLICAS must be at least 0, got {settings.replicas}")
    if settings.timeout_ms < 1:
        raise ConfigError(f"REDIS_WAIT_TIMEOUT_MS must be at least 1, got {settings.timeout_ms}")
    return settings


def confirm_replicated(redis: Redis, what: str) -> bool:
    """Wait until the configured replicas hold every write of this connection so far;
    False (and a warning naming `what`) when fewer confirmed in time."""
    settings = replication()
    if settings.replicas == 0:
        return True
    # WAIT covers the writes of its own connection; the callers' writes went out on pooled
    # connections that may be others. A write on this one, made after theirs, has a later
    # replication offset, so waiting for it waits for theirs.
    with redis.pipeline(transaction=False) as pipeline:
        pipeline.incr(FENCE_KEY)
        pipeline.wait(settings.replicas, settings.timeout_ms)
        _fence, confirmed = pipeline.execute()
    if int(confirmed) >= settings.replicas:
        return True
    log.warning(
        "a write was not confirmed by the replicas in time: a failover now could lose it",
        extra={
            "write": what,
            "confirmed": int(confirmed),
            "replicas": settings.replicas,
            "timeout_ms": settings.timeout_ms,
        },
    )
    return False
