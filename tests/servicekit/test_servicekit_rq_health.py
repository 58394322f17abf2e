"""The RQ workers' container health check, `python -m servicekit.rq_health`, run for real
against a real Redis: healthy only while a worker of this host is registered."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import redis
from rq import Queue, Worker

from servicekit.config import REPO_ROOT


def health_check(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("REDIS_URL")}
    return subprocess.run(
        [sys.executable, "-m", "servicekit.rq_health"],
        cwd=REPO_ROOT,
        env={**env, "PYTHONPATH": str(REPO_ROOT), **environment},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_healthy_only_while_a_worker_of_this_host_is_registered(
    redis_client: redis.Redis, redis_url: str
) -> None:
    missing = health_check({"REDIS_URL": redis_url})
    assert missing.returncode == 1
    assert "no RQ worker of this host is registered" in missing.stderr
    worker = Worker([Queue("checked", connection=redis_client)], connection=redis_client)
    assert worker.hostname == socket.gethostname()
    worker.register_birth()  # type: ignore[no-untyped-call]
    try:
        assert health_check({"REDIS_URL": redis_url}).returncode == 0
    finally:
        worker.register_death()  # type: ignore[no-untyped-call]
    assert health_check({"REDIS_URL": redis_url}).returncode == 1


def test_the_url_may_come_from_a_file_and_an_unreachable_redis_is_unhealthy(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "redis-url"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    secret.write_text(f"redis://127.0.0.1:{port}/0\n")
    unreachable = health_check({"REDIS_URL_FILE": str(secret)})
    assert unreachable.returncode == 1
    assert "Redis is not reachable" in unreachable.stderr
    unset = health_check({})
    assert unset.returncode == 1 and "REDIS_URL is not set" in unset.stderr
