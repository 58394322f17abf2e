"""`POST /users/`: registration, with the seed's wire shapes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from auth_service import service
from auth_service.models import User, db

USER_KEYS = {
    "publicId",
    "username",
    "firstName",
    "lastName",
    "email",
    "phoneNumber",
    "collegeName",
    "profilePicture",
    "dateJoined",
    "lastLogin",
}

Registration = Callable[..., dict[str, Any]]


def test_create_user_answers_201_with_the_seed_keys(
    client: FlaskClient, registration: Registration
) -> None:
    response = client.post("/users/", json=registration())

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == USER_KEYS
    assert body["username"] == "test_user_001"
    assert body["firstName"] == "Test"
    assert body["lastName"] == "User"
    assert body["email"] == "test_user_001@testers.techfesia.iiits.in"
    assert body["phoneNumber"] == "+911234567890"
    assert body["collegeName"] == "Test College 123"
    assert body["profilePicture"] == "url_to_profile_pic"
    assert body["lastLogin"] is None
    assert len(body["publicId"]) == 16 and int(body["publicId"], 16) >= 0
    joined = datetime.fromisoformat(body["dateJoined"])
    assert joined.utcoffset() is not None and joined.utcoffset().total_seconds() == 0
    assert "hash" not in response.get_data(as_text=True).lower()


def test_create_user_stores_a_normal_active_user_with_an_argon2id_hash(
    app: Flask, client: FlaskClient, registration: Registration
) -> None:
    client.post("/users/", json=registration())

    with app.app_context():
        user = db.session.query(User).filter_by(username="test_user_001").one()
        assert user.role == "normal"
        assert user.privileges == {}
        assert user.is_active is True
        assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
        assert "correct horse battery" not in user.password_hash
        assert user.date_joined.tzinfo is not None


def test_without_trailing_slash_too(client: FlaskClient, registration: Registration) -> None:
    assert client.post("/users", json=registration()).status_code == 201


def test_missing_username_is_400_with_the_seed_errors_body(
    client: FlaskClient, registration: Registration
) -> None:
    response = client.post("/users/", json=registration(username=None))

    assert response.status_code == 400
    assert response.get_json()["errors"] == {"username": "missing required field"}


def test_duplicate_username_is_422_with_the_seed_body(
    client: FlaskClient, registration: Registration
) -> None:
    assert client.post("/users/", json=registration()).status_code == 201

    response = client.post("/users/", json=registration(email="other@example.org"))

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"username": "This username already exists"}}


def test_a_unique_constraint_race_is_422_not_500(
    client: FlaskClient, registration: Registration, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two registrations of one name pass the existence check together; the database decides."""
    assert client.post("/users/", json=registration()).status_code == 201
    real_check = service.username_exists
    calls: list[str] = []

    def first_check_misses(username: str) -> bool:
        calls.append(username)
        return False if len(calls) == 1 else real_check(username)

    monkeypatch.setattr(service, "username_exists", first_check_misses)

    response = client.post("/users/", json=registration())

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"username": "This username already exists"}}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"phoneNumber": "12-34"}, "phoneNumber"),
        ({"phoneNumber": "+12345"}, "phoneNumber"),
        ({"password": "short"}, "password"),
        ({"password": "Test_User_001"}, "password"),
        ({"username": "a b"}, "username"),
        ({"username": "ab"}, "username"),
        ({"profilePicture": "javascript:alert(1)"}, "profilePicture"),
        ({"firstName": 5}, "firstName"),
        ({"email": None}, "email"),
        ({"password": None}, "password"),
    ],
)
def test_invalid_input_is_400_naming_the_field(
    client: FlaskClient, registration: Registration, overrides: dict[str, Any], field: str
) -> None:
    response = client.post("/users/", json=registration(**overrides))

    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "validation_error"
    assert set(body["errors"]) == {field}


@pytest.mark.parametrize(
    ("key", "value"),
    [("role", "superuser"), ("privileges", {"event": ["create"]}), ("isActive", False)],
)
def test_privileged_fields_are_refused(
    app: Flask, client: FlaskClient, registration: Registration, key: str, value: Any
) -> None:
    response = client.post("/users/", json={**registration(), key: value})

    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {key}
    with app.app_context():
        assert db.session.query(User).count() == 0


def test_optional_fields_default(client: FlaskClient, registration: Registration) -> None:
    body = registration(
        firstName=None, lastName=None, phoneNumber=None, collegeName=None, profilePicture=None
    )

    response = client.post("/users/", json=body)

    assert response.status_code == 201
    created = response.get_json()
    assert (created["firstName"], created["lastName"], created["collegeName"]) == ("", "", "")
    assert created["phoneNumber"] is None and created["profilePicture"] is None


@pytest.mark.parametrize("data", ["not json", "[1, 2]"])
def test_a_body_that_is_not_an_object_is_400(client: FlaskClient, data: str) -> None:
    response = client.post("/users/", data=data, content_type="application/json")

    assert response.status_code == 400
    assert response.is_json
