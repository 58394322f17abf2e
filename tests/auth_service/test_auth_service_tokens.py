"""`POST /internal/service-token`: tokens for service-to-service calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

SECRET = "test-secret"
PATH = "/internal/service-token"

Decode = Callable[[str], dict[str, Any]]


def test_the_shared_secret_gets_a_service_token(client: FlaskClient, decode: Decode) -> None:
    response = client.post(PATH, json={"service": "events"}, headers={"X-Service-Secret": SECRET})

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"access", "expires_in"}
    assert body["expires_in"] == 900
    claims = decode(body["access"])
    assert claims["sub"] == "service:events"
    assert claims["role"] == "service"
    assert claims["type"] == "access"
    assert claims["priv"] == {}
    assert claims["exp"] - claims["iat"] == pytest.approx(900, abs=1)


@pytest.mark.parametrize("headers", [{}, {"X-Service-Secret": "wrong"}, {"X-Service-Secret": ""}])
def test_a_missing_or_wrong_secret_is_401(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.post(PATH, json={"service": "events"}, headers=headers)

    assert response.status_code == 401
    assert "access" not in response.get_json()


def test_the_secret_is_checked_before_the_body(client: FlaskClient) -> None:
    response = client.post(PATH, json={"service": "Not Valid!"})

    assert response.status_code == 401


def test_without_a_configured_secret_it_is_503(make_app: Callable[..., Flask]) -> None:
    client = make_app(SERVICE_SECRET=None).test_client()

    response = client.post(PATH, json={"service": "events"}, headers={"X-Service-Secret": ""})

    assert response.status_code == 503
    assert response.get_json()["code"] == "service_unavailable"


@pytest.mark.parametrize("name", ["E", "Events", "events-service", "x" * 33, ""])
def test_an_invalid_service_name_is_400(client: FlaskClient, name: str) -> None:
    response = client.post(PATH, json={"service": name}, headers={"X-Service-Secret": SECRET})

    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"service"}
