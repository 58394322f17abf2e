"""The whole suite through the gateway, as a client sees it."""

from __future__ import annotations

import time

import redis
import requests
from rq import Worker

from devstack.stack import PACKAGES, Stack
from servicekit.revocation import revoke_user_tokens
from servicekit.users import DEFAULT_USER_STREAM
from tests.e2e.e2e_helpers import PASSWORD, bearer, login, new_user


def test_gateway_health_reports_every_upstream_ready(gateway_url: str) -> None:
    body = requests.get(f"{gateway_url}/health", timeout=10).json()
    assert body["status"] == "ok"
    assert set(body["upstreams"]) == set(PACKAGES)
    assert {state["status"] for state in body["upstreams"].values()} == {"ready"}


def test_create_user_login_and_authenticated_call(gateway_url: str) -> None:
    username, password = new_user(gateway_url), PASSWORD
    tokens = login(gateway_url, username, password)
    me = requests.get(
        f"{gateway_url}/users/{username}", headers=bearer(tokens["access"]), timeout=10
    )
    assert me.status_code == 200, me.text
    assert me.json()["username"] == username
    assert "password" not in me.text.lower()


def test_authenticated_route_needs_a_token(gateway_url: str) -> None:
    response = requests.get(f"{gateway_url}/users/admin", timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_staff_route_refuses_normal_user_and_admits_admin(
    gateway_url: str, admin_token: str
) -> None:
    username, password = new_user(gateway_url), PASSWORD
    normal = login(gateway_url, username, password)["access"]
    refused = requests.get(f"{gateway_url}/users", headers=bearer(normal), timeout=10)
    assert refused.status_code == 403
    assert refused.json() == {"error": "staff only", "code": "forbidden"}
    admitted = requests.get(f"{gateway_url}/users", headers=bearer(admin_token), timeout=10)
    assert admitted.status_code != 403 and admitted.status_code != 401


def test_refresh_gives_a_working_access_token(gateway_url: str) -> None:
    username, password = new_user(gateway_url), PASSWORD
    tokens = login(gateway_url, username, password)
    refreshed = requests.post(
        f"{gateway_url}/auth/token/refresh/", json={"refresh": tokens["refresh"]}, timeout=10
    )
    assert refreshed.status_code == 200, refreshed.text
    me = requests.get(
        f"{gateway_url}/users/{username}", headers=bearer(refreshed.json()["access"]), timeout=10
    )
    assert me.status_code == 200


def test_revoked_user_tokens_are_refused_on_the_next_request(
    stack: Stack, gateway_url: str
) -> None:
    username, password = new_user(gateway_url), PASSWORD
    tokens = login(gateway_url, username, password)
    url = f"{gateway_url}/users/{username}"
    assert requests.get(url, headers=bearer(tokens["access"]), timeout=10).status_code == 200
    subject = requests.get(url, headers=bearer(tokens["access"]), timeout=10).json()["publicId"]
    revoke_user_tokens(redis.Redis.from_url(stack.env()["REDIS_URL"]), subject)
    refused = requests.get(url, headers=bearer(tokens["access"]), timeout=10)
    assert refused.status_code == 401
    assert refused.json() == {"error": "token revoked", "code": "unauthorized"}
    fresh = login(gateway_url, username, password)["access"]
    assert requests.get(url, headers=bearer(fresh), timeout=10).status_code == 200


def test_request_id_round_trip(gateway_url: str) -> None:
    response = requests.get(
        f"{gateway_url}/events/category", headers={"X-Request-ID": "trace-e2e-1"}, timeout=10
    )
    assert response.headers["X-Request-ID"] == "trace-e2e-1"


def test_unknown_route_is_a_json_404(gateway_url: str) -> None:
    response = requests.get(f"{gateway_url}/no/such/route", timeout=10)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.headers["Content-Type"] == "application/json"


def test_rq_worker_is_running_with_its_scheduler(stack: Stack) -> None:
    connection = redis.Redis.from_url(stack.env()["REDIS_URL"])
    workers = Worker.all(connection=connection)
    assert workers, "no RQ worker registered"
    assert any("scheduler" in worker.queue_names() for worker in workers)


def test_each_service_publishes_its_openapi_document(stack: Stack) -> None:
    for name in PACKAGES:
        spec = requests.get(f"{stack.url(name)}/openapi.json", timeout=10).json()
        assert spec["openapi"].startswith("3."), name
        assert spec["info"]["title"] == f"{name}_service"


def test_a_new_account_reaches_the_user_lifecycle_stream(stack: Stack) -> None:
    """Registered through the gateway, announced on the stream (after commit, or by the
    stack's relay process), as a consumer group of another service would read it."""
    username = new_user(stack.url("gateway"))
    connection = redis.Redis.from_url(stack.env()["REDIS_URL"], decode_responses=True)
    deadline = time.monotonic() + 10
    found: list[dict[str, str]] = []
    while not found and time.monotonic() < deadline:
        entries = connection.xrange(DEFAULT_USER_STREAM)
        found = [fields for _id, fields in entries if fields.get("username") == username]
        time.sleep(0.1)
    assert [fields["type"] for fields in found] == ["user.created"]
    assert found[0]["publicId"] and found[0]["eventId"]
