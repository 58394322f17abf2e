"""Request ids, the JSON access log, /health, /ready and /metrics."""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from devstack.redis_server import free_port
from servicekit.observability import JsonFormatter
from servicekit.testing import TestKeys
from tests.servicekit.servicekit_harness import bearer
from tests.servicekit.servicekit_sample import Thing, db

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


AccessLines = Callable[[], list[str]]


@pytest.fixture
def access_lines(caplog: pytest.LogCaptureFixture) -> AccessLines:
    """The access-log lines (JSON, as the log formatter writes them) so far in this test."""
    caplog.set_level(logging.INFO, logger="flotilla.access")
    formatter = JsonFormatter()

    def lines() -> list[str]:
        return [formatter.format(r) for r in caplog.records if r.name == "flotilla.access"]

    return lines


@pytest.mark.parametrize("request_id", ["abc-123", "a.b:c_d-E", "x" * 128])
def test_safe_request_id_is_echoed(client: FlaskClient, request_id: str) -> None:
    response = client.get("/health", headers={"X-Request-ID": request_id})
    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize(
    "request_id", [None, "", "has spaces", "x" * 300, "semi;colon", "é"], ids=repr
)
def test_unsafe_or_missing_request_id_is_replaced(
    client: FlaskClient, request_id: str | None
) -> None:
    headers = {} if request_id is None else {"X-Request-ID": request_id}
    response = client.get("/health", headers=headers)
    generated = response.headers["X-Request-ID"]
    assert GENERATED_ID.match(generated)
    assert generated != request_id


def test_generated_request_ids_differ(client: FlaskClient) -> None:
    first = client.get("/health").headers["X-Request-ID"]
    second = client.get("/health").headers["X-Request-ID"]
    assert first != second


def test_request_id_on_error_answers(client: FlaskClient) -> None:
    for path in ("/nowhere", "/boom", "/me"):
        response = client.get(path, headers={"X-Request-ID": "err-1"})
        assert response.status_code >= 400
        assert response.headers["X-Request-ID"] == "err-1"


def test_one_access_line_per_request_with_route_and_user(
    app: Flask, client: FlaskClient, test_keys: TestKeys, access_lines: AccessLines
) -> None:
    with app.app_context():
        thing = Thing(name="lamp")
        db.session.add(thing)
        db.session.commit()
        thing_id = thing.id
    token = test_keys.token(sub="user-42")
    headers = {**bearer(token), "X-Request-ID": "req-7"}

    response = client.get(f"/things/{thing_id}", headers=headers)

    assert response.status_code == 200
    lines = access_lines()
    assert len(lines) == 1
    line = lines[0]
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "req-7"
    assert entry["method"] == "GET"
    assert entry["route"] == "/things/<int:thing_id>"
    assert entry["path"] == f"/things/{thing_id}"
    assert entry["status"] == 200
    assert entry["service"] == "sample"
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
    assert entry["user"] == "user-42"
    assert token not in line
    assert token.split(".")[2] not in line


@pytest.mark.parametrize(
    ("path", "status", "route"),
    [("/nowhere", 404, "<unmatched>"), ("/me", 401, "/me"), ("/boom", 500, "/boom")],
)
def test_access_line_without_verified_user(
    client: FlaskClient, access_lines: AccessLines, path: str, status: int, route: str
) -> None:
    response = client.get(path, headers={"Authorization": "Bearer not.a.token"})
    assert response.status_code == status
    lines = access_lines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert (entry["route"], entry["status"], entry["user"]) == (route, status, None)
    assert "not.a.token" not in lines[0]


def test_health(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "service": "sample"}


def test_ready_with_database(client: FlaskClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "service": "sample",
        "checks": {"database": "ok"},
    }


def test_ready_503_when_sqlite_file_is_unreachable(make_app, tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{folder / 'sample.db'}")
    with app.app_context():
        db.engine.dispose()  # no pooled connection keeps the removed file alive
    shutil.rmtree(folder)

    response = app.test_client().get("/ready")

    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("error")


def test_ready_503_when_postgres_is_down(make_app) -> None:
    url = f"postgresql+psycopg://flotilla@127.0.0.1:{free_port()}/flotilla"
    response = make_app(SQLALCHEMY_DATABASE_URI=url).test_client().get("/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("error")


def test_ready_with_real_redis(make_app, redis_url: str) -> None:
    app = make_app(uses_redis=True, REDIS_URL=redis_url)
    response = app.test_client().get("/ready")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.parametrize("closed", [True, False], ids=["closed-port", "not-configured"])
def test_ready_503_without_redis(make_app, closed: bool) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0" if closed else None
    app = make_app(uses_redis=True, REDIS_URL=url)
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"].startswith("error")


def requests_counted(client: FlaskClient, **labels: str) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        if family.name != "http_requests":
            continue
        for sample in family.samples:
            if sample.name == "http_requests_total" and sample.labels == labels:
                return sample.value
    return 0.0


def test_metrics_count_requests_by_service_and_route(client: FlaskClient) -> None:
    labels = {"service": "sample", "method": "GET", "route": "/health", "status": "200"}
    before = requests_counted(client, **labels)
    client.get("/health")
    client.get("/health")
    assert requests_counted(client, **labels) == before + 2
    text = client.get("/metrics").get_data(as_text=True)
    assert "# TYPE http_requests_total counter" in text
