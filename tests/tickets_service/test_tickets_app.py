"""tickets_service starts with its settings checked, documents its routes and is ready
when its database and Redis answer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from servicekit.settings import SettingsError


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("TICKETS_PER_HOUR", -1),
        ("TICKET_COMMENTS_PER_HOUR", "many"),
        ("SMTP_URL", "http://mail.example.org"),
        ("SMTP_TIMEOUT", 0),
        ("MAIL_FROM", " "),
    ],
)
def test_a_bad_setting_stops_the_start(
    make_app: Callable[..., Flask], setting: str, value: object
) -> None:
    with pytest.raises(SettingsError, match=setting):
        make_app(**{setting: value})


def test_the_smtp_url_is_a_secret(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(SettingsError) as raised:
        make_app(SMTP_URL="smtp://user:hunter2@mail.example.org")
    assert "hunter2" not in str(raised.value)


def test_the_openapi_document_lists_every_route(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]

    assert set(paths) == {
        "/ticket",
        "/ticket/public",
        "/ticket/{username}",
        "/ticket/{ticketid}/close",
        "/ticket/{ticketid}/reopen",
        "/ticket/{ticketid}/comments",
    }


def test_unknown_paths_and_methods_are_json(client: FlaskClient) -> None:
    assert client.get("/tickets").get_json()["code"] == "not_found"
    assert client.delete("/ticket/public").get_json()["code"] == "method_not_allowed"
