"""Every route of auth_service that reads a JSON body refuses a body that is not usable
JSON (nested 10,000 deep, a 5,000-digit integer, malformed) with 400 `invalid_json`,
the caller being allowed to reach the body."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from tests.auth_service.auth_helpers import SERVICE_SECRET, bearer

DEEP = "[" * 10_000 + "]" * 10_000
HUGE_INTEGER = '{"username": ' + "9" * 5000 + ', "password": 1}'
MALFORMED = '{"username": "alice", "password": '

# (method, path, who calls): every route with a JSON (or JSON-or-form) body.
JSON_ROUTES = [
    ("POST", "/users/", "anyone"),
    ("PUT", "/users/alice", "alice"),
    ("PUT", "/users/alice/privileges", "superuser"),
    ("PUT", "/users/alice/picture", "alice"),
    ("POST", "/users/alice/password", "alice"),
    ("PUT", "/users/alice/password", "alice"),
    ("PATCH", "/users/alice/password", "anyone"),
    ("POST", "/auth/token/", "anyone"),
    ("POST", "/auth/token/refresh/", "anyone"),
    ("PUT", "/auth/token/", "alice"),
    ("POST", "/register/", "anyone"),
    ("POST", "/api-token-auth/", "anyone"),
    ("POST", "/internal/service-token", "secret holder"),
    ("POST", "/internal/users/lookup", "service"),
]


@pytest.fixture
def caller_headers(
    client: FlaskClient,
    add_user: Callable[..., str],
    token_for: Callable[..., str],
    staff_token: Callable[..., str],
) -> dict[str, dict[str, str]]:
    """Headers that let each kind of caller past the route's checks to its body."""
    add_user("alice")
    service = client.post(
        "/internal/service-token",
        json={"service": "events"},
        headers={"X-Service-Secret": SERVICE_SECRET},
    )
    assert service.status_code == 200, service.get_json()
    return {
        "anyone": {},
        "alice": bearer(token_for("alice")),
        "superuser": bearer(staff_token(role="superuser")),
        "secret holder": {"X-Service-Secret": SERVICE_SECRET},
        "service": bearer(service.get_json()["access"]),
    }


@pytest.mark.parametrize(("method", "path", "who"), JSON_ROUTES)
@pytest.mark.parametrize(
    "body", [DEEP, HUGE_INTEGER, MALFORMED], ids=["deep", "huge-integer", "malformed"]
)
def test_a_body_that_is_not_json_is_400_invalid_json(
    client: FlaskClient,
    caller_headers: dict[str, dict[str, str]],
    method: str,
    path: str,
    who: str,
    body: str,
) -> None:
    headers = {**caller_headers[who], "Content-Type": "application/json"}

    response = client.open(path, method=method, data=body, headers=headers)

    assert response.status_code == 400, response.get_json()
    assert response.get_json()["code"] == "invalid_json"
