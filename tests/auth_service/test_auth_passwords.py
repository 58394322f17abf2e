"""User auth: auth modes, creating and changing a password, and resetting it by mail."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from auth_service.context import auth_context
from auth_service.models import LinkedIdentity, PasswordResetToken, User, db, utcnow
from auth_service.resets import token_hash
from auth_service.service import user_by_subject
from tests.auth_service.auth_helpers import (
    PASSWORD,
    bearer,
    mailed_reset_token,
    outbox_messages,
    stored_user,
)

AddUser = Callable[..., str]
TokenFor = Callable[..., str]
NEW_PASSWORD = "a brand new password"
RESET_REFUSED = {
    "error": {"resetToken": "token is invalid, expired or already used. Please get a new token"}
}


def can_log_in(client: FlaskClient, username: str, password: str) -> bool:
    response = client.post("/auth/token/", json={"username": username, "password": password})
    return response.status_code == 200


def link(app: Flask, user_id: str, provider: str, picture: str | None = None) -> None:
    with app.app_context():
        user = user_by_subject(user_id)
        assert user is not None
        db.session.add(
            LinkedIdentity(
                user_id=user.id, provider=provider, subject=f"{provider}-1", picture_url=picture
            )
        )
        db.session.commit()


# Auth modes


def test_auth_modes_of_a_password_account(
    client: FlaskClient, add_user: AddUser, token_for: TokenFor
) -> None:
    add_user("alice")

    response = client.get("/users/alice/auth_modes", headers=bearer(token_for("alice")))

    assert response.status_code == 200
    assert response.get_json() == {"password": True, "o-auth": []}


def test_auth_modes_list_linked_providers(
    app: Flask, client: FlaskClient, add_user: AddUser, staff_token: Callable[..., str]
) -> None:
    user_id = add_user("oauth_only", password=None)
    for provider in ("google", "github", "facebook"):
        link(app, user_id, provider)

    response = client.get("/users/oauth_only/auth_modes", headers=bearer(staff_token()))

    assert response.get_json() == {"password": False, "o-auth": ["facebook", "github", "google"]}


def test_auth_modes_of_someone_else_is_403_and_needs_a_token(
    client: FlaskClient, add_user: AddUser, token_for: TokenFor
) -> None:
    add_user("alice")
    add_user("bob")

    other = client.get("/users/bob/auth_modes", headers=bearer(token_for("alice")))

    assert other.status_code == 403
    assert client.get("/users/bob/auth_modes").status_code == 401


# Create a password


def signed_in_without_password(app: Flask, client: FlaskClient, add_user: AddUser) -> str:
    """An account that signs in another way, and an access token of it."""
    add_user("carol")
    access = client.post(
        "/auth/token/", json={"username": "carol", "password": PASSWORD}
    ).get_json()["access"]
    with app.app_context():
        user = db.session.query(User).filter_by(username="carol").one()
        user.password_hash = None
        db.session.commit()
    return str(access)


def test_create_a_password(app: Flask, client: FlaskClient, add_user: AddUser) -> None:
    access = signed_in_without_password(app, client, add_user)

    response = client.post(
        "/users/carol/password/", json={"password": "Hello World"}, headers=bearer(access)
    )

    assert response.status_code == 201
    assert response.get_json() == {"message": "new password created"}
    assert can_log_in(client, "carol", "Hello World")


def test_create_a_password_when_one_exists_is_422(
    client: FlaskClient, add_user: AddUser, token_for: TokenFor
) -> None:
    add_user("alice")

    response = client.post(
        "/users/alice/password/",
        json={"password": NEW_PASSWORD},
        headers=bearer(token_for("alice")),
    )

    assert response.status_code == 422
    assert response.get_json()["code"] == "password_exists"
    assert can_log_in(client, "alice", PASSWORD)


@pytest.mark.parametrize("password", ["short", "CAROL", "x" * 1025])
def test_create_a_weak_password_is_400(
    app: Flask, client: FlaskClient, add_user: AddUser, password: str
) -> None:
    access = signed_in_without_password(app, client, add_user)

    response = client.post(
        "/users/carol/password/", json={"password": password}, headers=bearer(access)
    )

    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"password"}
    assert stored_user(app, "carol").password_hash is None


def test_nobody_creates_or_changes_another_users_password(
    client: FlaskClient, add_user: AddUser, token_for: TokenFor, staff_token: Callable[..., str]
) -> None:
    add_user("alice")
    add_user("bob")
    change = {"oldPassword": PASSWORD, "newPassword": NEW_PASSWORD}
    for token in (token_for("alice"), staff_token(role="superuser")):
        created = client.post(
            "/users/bob/password/", json={"password": NEW_PASSWORD}, headers=bearer(token)
        )
        changed = client.put("/users/bob/password/", json=change, headers=bearer(token))
        assert created.status_code == changed.status_code == 403
    unknown = client.put("/users/nobody/password/", json=change, headers=bearer(token_for("alice")))
    assert unknown.status_code == 403
    assert can_log_in(client, "bob", PASSWORD)


# Change a password


def test_change_password_revokes_every_token(
    app: Flask, client: FlaskClient, add_user: AddUser
) -> None:
    add_user("alice")
    pair = client.post("/auth/token/", json={"username": "alice", "password": PASSWORD}).get_json()

    response = client.put(
        "/users/alice/password/",
        json={"oldPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers=bearer(pair["access"]),
    )

    assert response.status_code == 200
    assert response.get_json() == {"message": "password changed"}
    assert not can_log_in(client, "alice", PASSWORD)
    assert can_log_in(client, "alice", NEW_PASSWORD)
    assert client.get("/users/alice", headers=bearer(pair["access"])).status_code == 401
    refreshed = client.post("/auth/token/refresh/", json={"refresh": pair["refresh"]})
    assert refreshed.status_code == 401


def test_change_password_with_a_wrong_old_one_changes_nothing(
    app: Flask, client: FlaskClient, add_user: AddUser, token_for: TokenFor
) -> None:
    add_user("alice")
    access = token_for("alice")

    response = client.put(
        "/users/alice/password/",
        json={"oldPassword": "not the password", "newPassword": NEW_PASSWORD},
        headers=bearer(access),
    )

    assert response.status_code == 422
    assert response.get_json()["errors"] == {"oldPassword": "is not correct"}
    assert can_log_in(client, "alice", PASSWORD)
    assert client.get("/users/alice", headers=bearer(access)).status_code == 200


def test_change_to_a_weak_password_is_400(
    client: FlaskClient, add_user: AddUser, token_for: TokenFor
) -> None:
    add_user("alice")

    response = client.put(
        "/users/alice/password/",
        json={"oldPassword": PASSWORD, "newPassword": "alice"},
        headers=bearer(token_for("alice")),
    )

    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"newPassword"}
    assert can_log_in(client, "alice", PASSWORD)


def test_change_password_of_an_account_without_one_is_422(
    app: Flask, client: FlaskClient, add_user: AddUser
) -> None:
    access = signed_in_without_password(app, client, add_user)

    response = client.put(
        "/users/carol/password/",
        json={"oldPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers=bearer(access),
    )

    assert response.status_code == 422
    assert response.get_json()["code"] == "no_password"


def test_change_password_needs_both_fields(
    client: FlaskClient, add_user: AddUser, token_for: TokenFor
) -> None:
    add_user("alice")

    response = client.put(
        "/users/alice/password/",
        json={"newPassword": NEW_PASSWORD},
        headers=bearer(token_for("alice")),
    )

    assert response.status_code == 400
    assert response.get_json()["errors"] == {"oldPassword": "missing required field"}


# Reset a password


def request_reset(client: FlaskClient, username: str) -> Any:
    return client.post(f"/users/{username}/password/reset")


def reset(client: FlaskClient, username: str, token: str, password: str = NEW_PASSWORD) -> Any:
    return client.patch(
        f"/users/{username}/password/", json={"resetToken": token, "newPassword": password}
    )


def test_reset_flow(app: Flask, client: FlaskClient, add_user: AddUser, outbox: Path) -> None:
    add_user("alice", email="alice@example.org")
    before = client.post("/auth/token/", json={"username": "alice", "password": PASSWORD}).json

    answer = request_reset(client, "alice")
    token = mailed_reset_token(outbox)
    response = reset(client, "alice", token)

    assert answer.status_code == 202
    assert response.status_code == 200
    assert response.get_json() == {"message": "Password reset successfully"}
    assert can_log_in(client, "alice", NEW_PASSWORD)
    assert not can_log_in(client, "alice", PASSWORD)
    assert client.get("/users/alice", headers=bearer(before["access"])).status_code == 401
    assert (
        client.post("/auth/token/refresh/", json={"refresh": before["refresh"]}).status_code == 401
    )


def test_the_answer_is_the_same_whether_or_not_the_account_exists(
    client: FlaskClient, add_user: AddUser, outbox: Path
) -> None:
    add_user("alice")
    add_user("no_mail", email=None)

    unknown = request_reset(client, "nobody_at_all")
    without_email = request_reset(client, "no_mail")
    known = request_reset(client, "alice")

    assert unknown.status_code == without_email.status_code == known.status_code == 202
    assert unknown.get_json() == without_email.get_json() == known.get_json()
    mailed_reset_token(outbox)
    assert len(outbox_messages(outbox)) == 1


def test_the_mail_goes_to_the_account_address(
    client: FlaskClient, add_user: AddUser, outbox: Path
) -> None:
    add_user("alice", email="alice@example.org", first_name="Alice")
    request_reset(client, "alice")
    token = mailed_reset_token(outbox)

    text = outbox_messages(outbox)[0].read_text()

    assert "To: alice@example.org" in text
    assert "Hello Alice" in text
    assert token in text


def test_a_reset_token_is_single_use(client: FlaskClient, add_user: AddUser, outbox: Path) -> None:
    add_user("alice")
    request_reset(client, "alice")
    token = mailed_reset_token(outbox)

    assert reset(client, "alice", token).status_code == 200
    again = reset(client, "alice", token, "yet another password")

    assert again.status_code == 422
    assert again.get_json() == RESET_REFUSED
    assert can_log_in(client, "alice", NEW_PASSWORD)


def test_an_expired_reset_token_is_refused(
    app: Flask, client: FlaskClient, add_user: AddUser, outbox: Path
) -> None:
    add_user("alice")
    request_reset(client, "alice")
    token = mailed_reset_token(outbox)
    with app.app_context():
        row = db.session.query(PasswordResetToken).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()

    response = reset(client, "alice", token)

    assert response.status_code == 422
    assert response.get_json() == RESET_REFUSED
    assert can_log_in(client, "alice", PASSWORD)


def test_reset_tokens_expire_after_the_configured_time(
    make_app: Callable[..., Flask], outbox: Path
) -> None:
    client = make_app(PASSWORD_RESET_TTL=1).test_client()
    client.post("/users/", json={"username": "hasty", "email": "h@e.org", "password": PASSWORD})
    request_reset(client, "hasty")
    token = mailed_reset_token(outbox)

    time.sleep(1.1)

    assert reset(client, "hasty", token).get_json() == RESET_REFUSED


def test_a_new_request_replaces_the_earlier_token(
    client: FlaskClient, add_user: AddUser, outbox: Path
) -> None:
    add_user("alice")
    request_reset(client, "alice")
    first = mailed_reset_token(outbox)
    request_reset(client, "alice")
    second = mailed_reset_token(outbox, seen=1)
    assert second != first

    assert reset(client, "alice", first).status_code == 422
    assert reset(client, "alice", second).status_code == 200


@pytest.mark.parametrize("token", ["", "made-up-token", "x" * 256])
def test_an_unknown_token_is_refused(client: FlaskClient, add_user: AddUser, token: str) -> None:
    add_user("alice")

    response = reset(client, "alice", token)

    assert response.status_code == 422
    assert response.get_json() == RESET_REFUSED


def test_a_token_of_another_user_is_refused(
    client: FlaskClient, add_user: AddUser, outbox: Path
) -> None:
    add_user("alice")
    add_user("bob")
    request_reset(client, "alice")
    token = mailed_reset_token(outbox)

    assert reset(client, "bob", token).get_json() == RESET_REFUSED
    assert reset(client, "nobody", token).get_json() == RESET_REFUSED
    assert reset(client, "alice", token).status_code == 200


def test_a_weak_new_password_leaves_the_token_usable(
    client: FlaskClient, add_user: AddUser, outbox: Path
) -> None:
    add_user("alice")
    request_reset(client, "alice")
    token = mailed_reset_token(outbox)

    weak = reset(client, "alice", token, "short")

    assert weak.status_code == 400
    assert set(weak.get_json()["errors"]) == {"newPassword"}
    assert reset(client, "alice", token).status_code == 200


def test_only_the_hash_of_a_reset_token_is_stored(
    app: Flask, client: FlaskClient, add_user: AddUser, outbox: Path
) -> None:
    add_user("alice")
    request_reset(client, "alice")
    token = mailed_reset_token(outbox)

    with app.app_context():
        (row,) = db.session.query(PasswordResetToken).all()
        assert row.token_hash == token_hash(token) != token
        lifetime = (row.expires_at - row.created_at).total_seconds()
        assert lifetime == pytest.approx(3600, abs=5)


def test_a_disabled_account_gets_no_reset(
    app: Flask, client: FlaskClient, add_user: AddUser, outbox: Path
) -> None:
    add_user("alice")
    request_reset(client, "alice")
    token = mailed_reset_token(outbox)
    with app.app_context():
        db.session.query(User).filter_by(username="alice").update({"is_active": False})
        db.session.commit()

    assert request_reset(client, "alice").status_code == 202
    assert reset(client, "alice", token).get_json() == RESET_REFUSED
    time.sleep(0.2)
    assert len(outbox_messages(outbox)) == 1
    stored_hash = stored_user(app, "alice").password_hash
    assert auth_context(app).passwords.verify(stored_hash, PASSWORD)


def test_reset_requests_are_throttled(make_app: Callable[..., Flask], outbox: Path) -> None:
    client = make_app(PASSWORD_RESET_RATE_LIMIT_USERNAME="2/hour").test_client()

    statuses = [request_reset(client, "someone").status_code for _ in range(3)]

    assert statuses == [202, 202, 429]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"newPassword": NEW_PASSWORD}, "resetToken"), ({"resetToken": "abc"}, "newPassword")],
)
def test_reset_needs_both_fields(client: FlaskClient, body: dict[str, Any], field: str) -> None:
    response = client.patch("/users/alice/password/", json=body)

    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {field}
