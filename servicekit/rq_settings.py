"""RQ's settings module for the suite's workers: `rq worker --config servicekit.rq_settings …`.

RQ builds the worker's connection from it: `REDIS_URL` for a plain Redis, RQ's own
`SENTINEL` settings (redis-py's `Sentinel(...).master_for(...)`) for a `redis+sentinel://`
URL (see servicekit.redis_connection). The URL comes from the environment, or from the file
`REDIS_URL_FILE` names, never from the command line, where `ps` would show its password.
"""

from __future__ import annotations

from typing import Any

from servicekit.config import load_environment, redis_url
from servicekit.redis_connection import rq_settings

load_environment()
_url = redis_url()
if not _url:
    raise RuntimeError("REDIS_URL is not set: the RQ worker has no Redis")
_settings = rq_settings(_url)

REDIS_URL: str | None = _settings.get("REDIS_URL")
SENTINEL: dict[str, Any] | None = _settings.get("SENTINEL")
