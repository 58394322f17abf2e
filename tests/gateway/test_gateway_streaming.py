"""Large bodies through the gateway served by gunicorn (one gthread worker), as in production:
every byte arrives, and the worker's memory stays bounded whatever the body size."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import requests

from servicekit.testing import TestKeys
from tests.gateway.gateway_harness import (
    CHUNK,
    MIB,
    EchoUpstream,
    PatternFile,
    pattern_bytes,
    pattern_sha256,
)
from tests.gateway.gunicorn_harness import ServedGateway
from tests.gateway.gunicorn_harness import gunicorn_gateway as serve_gateway

BIG = 50 * MIB
MEMORY_BOUND_KIB = 25 * 1024


@cache
def big_sha256() -> str:
    return pattern_sha256(BIG)


def proc_status_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(value.split()[0])
    return values


def reset_peak(pid: int) -> None:
    """Start VmHWM again from the current RSS (when the kernel allows it)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def only_worker(served: ServedGateway) -> int:
    workers = served.worker_pids
    assert len(workers) == 1, workers
    return workers[0]


@pytest.fixture(scope="module")
def gunicorn_gateway(
    echo: EchoUpstream, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedGateway]:
    log = tmp_path_factory.mktemp("gunicorn") / "gateway.log"
    with serve_gateway(echo.url, redis_url, log) as served:
        yield served


@pytest.fixture
def auth_header(test_keys: TestKeys) -> dict[str, str]:
    return {"Authorization": f"Bearer {test_keys.token(sub='streaming-user')}"}


def upload(url: str, headers: dict[str, str], size: int, with_length: bool) -> requests.Response:
    body = PatternFile(size) if with_length else pattern_bytes(size)
    return requests.post(f"{url}/sample/posts", data=body, headers=headers, timeout=60)


@pytest.mark.parametrize("with_length", [False, True], ids=["chunked", "content-length"])
def test_large_upload_is_streamed_with_bounded_memory(
    gunicorn_gateway: ServedGateway, auth_header: dict[str, str], with_length: bool
) -> None:
    served = gunicorn_gateway
    worker = only_worker(served)
    warm_up = upload(served.url, auth_header, MIB, with_length)
    assert warm_up.status_code == 200, warm_up.text
    before = proc_status_kib(worker)["VmRSS"]
    reset_peak(worker)

    response = upload(served.url, auth_header, BIG, with_length)

    peak = proc_status_kib(worker)["VmHWM"]
    assert response.status_code == 200, response.text
    echoed = response.json()
    assert echoed["path"] == "/sample/posts"
    assert (echoed["body_length"], echoed["body_sha256"]) == (BIG, big_sha256())
    # Read whole (spooled to disk) before the service sees it: always with its length.
    assert echoed["headers"]["content-length"] == str(BIG)
    assert "transfer-encoding" not in echoed["headers"]
    assert peak - before < MEMORY_BOUND_KIB, f"worker grew by {peak - before} KiB"


def test_large_download_is_streamed_with_bounded_memory(gunicorn_gateway: ServedGateway) -> None:
    served = gunicorn_gateway
    worker = only_worker(served)
    warm_up = requests.get(f"{served.url}/media/large/{MIB}", timeout=10)
    assert warm_up.status_code == 200
    before = proc_status_kib(worker)["VmRSS"]
    reset_peak(worker)

    digest, length = hashlib.sha256(), 0
    with requests.get(f"{served.url}/media/large/{BIG}", stream=True, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["Content-Length"] == str(BIG)
        assert response.headers["X-Request-ID"]
        for chunk in response.iter_content(CHUNK):
            digest.update(chunk)
            length += len(chunk)

    peak = proc_status_kib(worker)["VmHWM"]
    assert (length, digest.hexdigest()) == (BIG, big_sha256())
    assert peak - before < MEMORY_BOUND_KIB, f"worker grew by {peak - before} KiB"


def test_served_gateway_checks_tokens_with_the_published_keys(
    gunicorn_gateway: ServedGateway, auth_header: dict[str, str]
) -> None:
    url = f"{gunicorn_gateway.url}/sample/gets"
    assert requests.get(url, headers=auth_header, timeout=10).status_code == 200
    response = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert response.status_code == 401
    assert response.json() == {"error": "malformed token", "code": "unauthorized"}


def test_served_gateway_forwards_encoded_paths(gunicorn_gateway: ServedGateway) -> None:
    response = requests.get(f"{gunicorn_gateway.url}/media/a%20b/%E6%97%A5.png", timeout=10)
    assert response.status_code == 200
    assert response.json()["path"] == "/media/a b/日.png"
