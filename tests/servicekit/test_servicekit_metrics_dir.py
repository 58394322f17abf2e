"""The metrics folder of a gunicorn master (PROMETHEUS_MULTIPROC_DIR): created when
missing, emptied of an earlier run's files before the workers start, and summed over
every worker by /metrics. A real gunicorn serving a real service."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import gateway.gunicorn_conf
import servicekit.gunicorn_conf
from devstack.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 24
STALE_ROUTE = "/left-by-an-earlier-run"


def write_stale_metrics(directory: Path) -> None:
    """What a worker of an earlier run leaves: its counter file."""
    script = (
        "from servicekit.observability import REQUESTS; "
        f"REQUESTS.labels('activity', 'GET', {STALE_ROUTE!r}, '200').inc(1000)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=ROOT)
    assert list(directory.glob("counter_*.db"))


def get(url: str) -> str:
    # A new connection per request, so that the requests spread over the workers.
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A service under gunicorn with two workers; its metrics folder has an earlier run's
    file and one that is not prometheus_client's."""
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    write_stale_metrics(metrics)
    (metrics / "notes.txt").write_text("not a metrics file\n")
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FLOTILLA_VAR_DIR": str(tmp_path / "var"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "GUNICORN_WORKERS": "2",
    }
    argv = [
        sys.executable, "-m", "gunicorn", "-c", "servicekit/gunicorn_conf.py",
        "--bind", f"127.0.0.1:{port}", "activity_service.wsgi:app",
    ]  # fmt: skip
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            get(url + "/health")
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, "gunicorn never answered"
            time.sleep(0.1)
    yield url, metrics
    process.terminate()
    process.wait(timeout=30)
    log.close()


def health_count(metrics_text: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("http_requests_total{") and 'route="/health"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_the_master_empties_the_metrics_folder_and_metrics_sum_every_worker(
    serve: tuple[str, Path],
) -> None:
    url, metrics = serve
    for _ in range(REQUESTS):
        get(url + "/health")
    text = get(url + "/metrics")

    assert STALE_ROUTE not in text, "an earlier run's counts were summed into this run"
    assert (metrics / "notes.txt").exists(), "a file that is not a metrics file was removed"
    # The first /health (the readiness wait) and the loop's, whichever worker served them.
    assert health_count(text) == REQUESTS + 1, text


def test_a_missing_metrics_folder_is_created(tmp_path: Path) -> None:
    missing = tmp_path / "tmpfs" / "flotilla-metrics"
    servicekit.gunicorn_conf.empty_metrics_dir(missing)
    assert missing.is_dir()


def test_the_gateway_master_empties_it_too() -> None:
    assert gateway.gunicorn_conf.on_starting is servicekit.gunicorn_conf.on_starting
