"""The gateway under gunicorn, as in production, on a free loopback port, for tests that
need the real server: its workers, threads, timeouts and socket handling."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from devstack.redis_server import free_port
from servicekit.config import UPSTREAMS
from tests.support.connections import served_process

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ServedGateway:
    url: str
    metrics_url: str
    master_pid: int

    @property
    def worker_pids(self) -> list[int]:
        return [child.pid for child in psutil.Process(self.master_pid).children()]

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)


@contextmanager
def gunicorn_gateway(
    upstream_url: str,
    redis_url: str,
    log: Path,
    settings: Mapping[str, str] | None = None,
    upstreams: Mapping[str, str] | None = None,
) -> Iterator[ServedGateway]:
    """Run the gateway with its gunicorn settings (gateway/gunicorn_conf.py); every
    upstream (and the JWKS) at `upstream_url` unless `upstreams` names another URL for a
    service. `settings` are extra environment variables (GUNICORN_*, GATEWAY_*)."""
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GATEWAY_METRICS_BIND": f"127.0.0.1:{metrics_port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_GRACEFUL_TIMEOUT": "2",
        "LOG_LEVEL": "warning",
        "REDIS_URL": redis_url,
        "JWKS_URL": f"{upstream_url}/.well-known/jwks.json",
        "JWT_ISSUER": "flotilla",
        "JWT_AUDIENCE": "flotilla",
        "GATEWAY_READ_TIMEOUT": "10",
        "GATEWAY_CONNECT_TIMEOUT": "1",
        **{f"{name.upper()}_SERVICE_URL": upstream_url for name in UPSTREAMS},
        **{f"{name.upper()}_SERVICE_URL": url for name, url in (upstreams or {}).items()},
        **(settings or {}),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "gunicorn", "-c", "gateway/gunicorn_conf.py"]
    url, metrics_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    argv = [*command, "gateway.app:create_app"]
    with served_process(argv, env, log, f"{metrics_url}/metrics") as process:
        yield ServedGateway(url, metrics_url, process.pid)
