"""The health check of an RQ worker's container: `python -m servicekit.rq_health`.

Healthy (exit 0) while a worker of this host is registered with RQ, reached the way the
worker reaches Redis (servicekit.redis_connection: a plain or a Sentinel URL, from
`REDIS_URL` or the file `REDIS_URL_FILE` names); 1 otherwise, with the reason on stderr.
"""

from __future__ import annotations

import socket
import sys

from redis.exceptions import RedisError
from rq import Worker

from servicekit.config import env, load_environment
from servicekit.redis_connection import redis_from_url

TIMEOUT = 4.0  # seconds, within the checks' own timeout


def worker_of_this_host_registered(redis_url: str, hostname: str) -> bool:
    with redis_from_url(redis_url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT) as redis:
        return any(worker.hostname == hostname for worker in Worker.all(connection=redis))


def main() -> int:
    load_environment()
    url = env("REDIS_URL")
    if not url:
        print("REDIS_URL is not set", file=sys.stderr)
        return 1
    try:
        registered = worker_of_this_host_registered(url, socket.gethostname())
    except RedisError as exc:
        print(f"Redis is not reachable: {exc}", file=sys.stderr)
        return 1
    if not registered:
        print("no RQ worker of this host is registered", file=sys.stderr)
    return 0 if registered else 1


if __name__ == "__main__":
    raise SystemExit(main())
