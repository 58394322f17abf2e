"""Users: the staff list, profile updates, privileges, disabling, enabling and deleting."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from auth_service.models import (
    ApiToken,
    LinkedIdentity,
    PasswordResetToken,
    RefreshToken,
    User,
    db,
)
from servicekit.revocation import user_key
from tests.auth_service.auth_helpers import PASSWORD, USER_KEYS, bearer, image_bytes, stored_user
from tests.auth_service.auth_media import MediaServer

AddUser = Callable[..., str]
TokenFor = Callable[..., str]
StaffToken = Callable[..., str]


def add_many(app: Flask, count: int) -> None:
    """`count` users straight in the database (no password: quick to make)."""
    with app.app_context():
        db.session.add_all(
            User(username=f"many_{i:04d}", email=f"m{i}@example.org") for i in range(count)
        )
        db.session.commit()


def log_in(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/auth/token/", json={"username": username, "password": password})


# GET /users


def test_list_users_pages_in_sign_up_order(
    app: Flask, client: FlaskClient, staff_token: StaffToken
) -> None:
    token = staff_token()  # user 1 of 26
    add_many(app, 25)

    first = client.get("/users?limit=10", headers=bearer(token))
    third = client.get("/users?limit=10&page=3", headers=bearer(token))

    assert first.status_code == third.status_code == 200
    body = first.get_json()
    assert set(body) == {"currentPage", "noOfPages", "users"}
    assert (body["currentPage"], body["noOfPages"]) == (1, 3)
    assert [u["username"] for u in body["users"]] == ["staff_1"] + [
        f"many_{i:04d}" for i in range(9)
    ]
    assert all(set(u) == USER_KEYS for u in body["users"])
    datetime.fromisoformat(body["users"][0]["dateJoined"])
    last = third.get_json()
    assert (last["currentPage"], last["noOfPages"]) == (3, 3)
    assert [u["username"] for u in last["users"]] == [f"many_{i:04d}" for i in range(19, 25)]


def test_list_users_defaults_to_pages_of_10(
    app: Flask, client: FlaskClient, staff_token: StaffToken
) -> None:
    token = staff_token()
    add_many(app, 10)

    body = client.get("/users", headers=bearer(token)).get_json()

    assert (body["currentPage"], body["noOfPages"], len(body["users"])) == (1, 2, 10)


def test_a_page_past_the_end_is_400_with_the_seed_body(
    app: Flask, client: FlaskClient, staff_token: StaffToken
) -> None:
    token = staff_token()
    add_many(app, 44)

    response = client.get("/users?limit=10&page=6", headers=bearer(token))

    assert response.status_code == 400
    assert response.get_json() == {
        "message": "This page does not exist",
        "pageSize": 10,
        "noOfPages": 5,
    }


def test_the_page_size_is_capped_at_100(
    app: Flask, client: FlaskClient, staff_token: StaffToken
) -> None:
    token = staff_token()
    add_many(app, 150)

    body = client.get("/users?limit=1000", headers=bearer(token)).get_json()
    past = client.get("/users?limit=1000&page=3", headers=bearer(token)).get_json()

    assert (len(body["users"]), body["noOfPages"]) == (100, 2)
    assert (past["pageSize"], past["noOfPages"]) == (100, 2)


@pytest.mark.parametrize("query", ["limit=0", "page=0", "limit=ten", "page=-1"])
def test_invalid_paging_is_400(client: FlaskClient, staff_token: StaffToken, query: str) -> None:
    response = client.get(f"/users?{query}", headers=bearer(staff_token()))

    assert response.status_code == 400
    assert response.get_json()["code"] == "validation_error"


def test_only_staff_list_users(client: FlaskClient, add_user: AddUser, token_for: TokenFor) -> None:
    add_user("alice")

    assert client.get("/users").status_code == 401
    refused = client.get("/users", headers=bearer(token_for("alice")))
    assert refused.status_code == 403
    assert refused.get_json() == {"error": "staff only", "code": "forbidden"}


# PUT /users/<username>


SEED_UPDATE = {
    "username": "test_user_001",
    "firstName": "Test",
    "lastName": "User",
    "email": "test_user_001@testers.techfesia.iiits.in",
    "phoneNumber": "+911234567890",
    "collegeName": "Test College 123",
    "profilePicture": "url_to_profile_pic",
}


def test_update_own_record_with_the_seed_body(
    app: Flask, client: FlaskClient, add_user: AddUser, token_for: TokenFor
) -> None:
    add_user("test_user_001", first_name="Old", college_name="Old College")
    token = token_for("test_user_001")

    response = client.put("/users/test_user_001?=", json=SEED_UPDATE, headers=bearer(token))

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == USER_KEYS - {"dateJoined", "lastLogin"}
    assert {k: body[k] for k in SEED_UPDATE} == SEED_UPDATE
    record = client.get("/users/test_user_001", headers=bearer(token)).get_json()
    assert record["collegeName"] == "Test College 123"


def test_a_partial_update_changes_only_those_fields(
    client: FlaskClient, add_user: AddUser, token_for: TokenFor
) -> None:
    add_user("alice", first_name="Alice", phone_number="+911234567890")
    token = token_for("alice")

    body = client.put(
        "/users/alice", json={"lastName": "Liddell", "phoneNumber": None}, headers=bearer(token)
    ).get_json()

    assert (body["firstName"], body["lastName"], body["phoneNumber"]) == ("Alice", "Liddell", None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": None}, "email"),
        ({"phoneNumber": "12-34"}, "phoneNumber"),
        ({"username": "a b"}, "username"),
        ({"profilePicture": "javascript:alert(1)"}, "profilePicture"),
        ({"firstName": "x" * 151}, "firstName"),
        ({"role": "superuser"}, "role"),
        ({"privileges": {"user": ["delete"]}}, "privileges"),
        ({"isActive": False}, "isActive"),
        ({"publicId": "mine"}, "publicId"),
        ({"dateJoined": "2020-01-01T00:00:00Z"}, "dateJoined"),
        ({"password": "sneaky new one"}, "password"),
    ],
)
def test_invalid_or_privileged_fields_are_400_and_change_nothing(
    app: Flask,
    client: FlaskClient,
    add_user: AddUser,
    token_for: TokenFor,
    changes: dict[str, Any],
    field: str,
) -> None:
    add_user("alice")
    before = stored_user(app, "alice")

    response = client.put("/users/alice", json=changes, headers=bearer(token_for("alice")))

    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {field}
    after = stored_user(app, "alice")
    assert (after.role, after.is_active, after.public_id, after.email) == (
        before.role,
        before.is_active,
        before.public_id,
        before.email,
    )


def test_renaming_to_a_taken_username_is_422(
    client: FlaskClient, add_user: AddUser, token_for: TokenFor
) -> None:
    add_user("alice")
    add_user("bob")

    response = client.put(
        "/users/alice", json={"username": "bob"}, headers=bearer(token_for("alice"))
    )

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"username": "This username already exists"}}


def test_renaming_revokes_the_users_tokens(
    app: Flask, client: FlaskClient, add_user: AddUser, token_for: TokenFor
) -> None:
    add_user("alice")
    token = token_for("alice")

    response = client.put("/users/alice", json={"username": "alice2"}, headers=bearer(token))

    assert response.status_code == 200
    assert response.get_json()["username"] == "alice2"
    assert client.get("/users/alice2", headers=bearer(token)).status_code == 401
    assert log_in(client, "alice2").status_code == 200
    assert log_in(client, "alice").status_code == 401


def test_keeping_the_same_username_revokes_nothing(
    client: FlaskClient, add_user: AddUser, token_for: TokenFor
) -> None:
    add_user("alice")
    token = token_for("alice")

    client.put("/users/alice", json={"username": "alice", "firstName": "A"}, headers=bearer(token))

    assert client.get("/users/alice", headers=bearer(token)).status_code == 200


def test_who_may_update_a_record(
    app: Flask,
    client: FlaskClient,
    add_user: AddUser,
    token_for: TokenFor,
    staff_token: StaffToken,
) -> None:
    add_user("alice")
    add_user("other_staff", role="staff", privileges={"user": ["read"]})
    change = {"collegeName": "Changed"}

    def put(username: str, token: str | None) -> int:
        headers = bearer(token) if token else {}
        return client.put(f"/users/{username}", json=change, headers=headers).status_code

    assert put("alice", None) == 401
    add_user("bob")
    assert put("alice", token_for("bob")) == 403
    assert put("alice", staff_token(user=["read"])) == 403
    updater = staff_token(user=["update"])
    assert put("alice", updater) == 200
    assert put("nobody", updater) == 404
    assert put("other_staff", updater) == 403  # staff accounts are a superuser's business
    superuser = staff_token(role="superuser")
    assert put("other_staff", superuser) == 200
    assert stored_user(app, "alice").college_name == "Changed"


# Privileges


def test_privileges_of_each_state(
    app: Flask, client: FlaskClient, add_user: AddUser, staff_token: StaffToken
) -> None:
    add_user("normal_one")
    add_user(
        "staff_one",
        role="staff",
        privileges={"user": ["read"], "event": ["read", "create", "update", "delete"]},
    )
    add_user("root_one", role="superuser")
    token = staff_token()

    def state(username: str) -> Any:
        return client.get(f"/users/{username}/privileges", headers=bearer(token)).get_json()

    assert state("normal_one") == {"state": "normal"}
    assert state("staff_one") == {
        "state": "staff",
        "privileges": {"user": ["read"], "event": ["read", "create", "update", "delete"]},
    }
    assert state("root_one") == {"state": "superuser"}


def test_privileges_need_staff_and_an_existing_user(
    client: FlaskClient, add_user: AddUser, token_for: TokenFor, staff_token: StaffToken
) -> None:
    add_user("alice")

    assert client.get("/users/alice/privileges").status_code == 401
    assert (
        client.get("/users/alice/privileges", headers=bearer(token_for("alice"))).status_code == 403
    )
    missing = client.get("/users/nobody/privileges", headers=bearer(staff_token()))
    assert missing.status_code == 404


def test_a_superuser_grants_staff_and_the_user_signs_in_again(
    app: Flask,
    client: FlaskClient,
    add_user: AddUser,
    staff_token: StaffToken,
    decode: Callable[[str], dict[str, Any]],
    redis_client: redis.Redis,
) -> None:
    alice_id = add_user("alice")
    before = log_in(client, "alice").get_json()
    body = {
        "state": "staff",
        "privileges": {"event": ["update", "read", "read"], "firebaseUser": []},
    }

    response = client.put(
        "/users/alice/privileges", json=body, headers=bearer(staff_token(role="superuser"))
    )

    assert response.status_code == 200
    assert response.get_json() == {
        "state": "staff",
        "privileges": {"event": ["read", "update"], "firebaseUser": []},
    }
    assert redis_client.exists(user_key(alice_id))
    assert client.get("/users/alice", headers=bearer(before["access"])).status_code == 401
    refreshed = client.post("/auth/token/refresh/", json={"refresh": before["refresh"]})
    assert refreshed.status_code == 401
    time.sleep(0.01)
    claims = decode(log_in(client, "alice").get_json()["access"])
    assert (claims["role"], claims["priv"]) == ("staff", {"event": "ru"})


def test_revoking_staff_clears_privileges(
    app: Flask, client: FlaskClient, add_user: AddUser, staff_token: StaffToken
) -> None:
    add_user("alice", role="staff", privileges={"event": ["read"]})

    response = client.put(
        "/users/alice/privileges",
        json={"state": "normal"},
        headers=bearer(staff_token(role="superuser")),
    )

    assert response.get_json() == {"state": "normal"}
    assert stored_user(app, "alice").privileges == {}


def test_only_a_superuser_changes_privileges(
    app: Flask, client: FlaskClient, add_user: AddUser, staff_token: StaffToken
) -> None:
    add_user("alice")

    response = client.put(
        "/users/alice/privileges",
        json={"state": "superuser"},
        headers=bearer(staff_token(user=["create", "read", "update", "delete"])),
    )

    assert response.status_code == 403
    assert stored_user(app, "alice").role == "normal"


def test_a_superuser_cannot_change_their_own_role(
    app: Flask, client: FlaskClient, staff_token: StaffToken
) -> None:
    token = staff_token(role="superuser")

    response = client.put(
        "/users/superuser_1/privileges", json={"state": "normal"}, headers=bearer(token)
    )

    assert response.status_code == 422
    assert response.get_json()["code"] == "own_account"
    assert stored_user(app, "superuser_1").role == "superuser"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"state": "god"}, "state"),
        ({}, "state"),
        ({"state": "staff", "privileges": {"bad name!": ["read"]}}, "privileges"),
        ({"state": "staff", "privileges": {"event": ["fly"]}}, "privileges"),
        ({"state": "staff", "privileges": {"event": "crud"}}, "privileges"),
        ({"state": "normal", "privileges": {"event": ["read"]}}, "privileges"),
        ({"state": "staff", "privileges": {f"m{i}": ["read"] for i in range(65)}}, "privileges"),
    ],
)
def test_invalid_privileges_are_400(
    client: FlaskClient,
    add_user: AddUser,
    staff_token: StaffToken,
    body: dict[str, Any],
    field: str,
) -> None:
    add_user("alice")

    response = client.put(
        "/users/alice/privileges", json=body, headers=bearer(staff_token(role="superuser"))
    )

    assert response.status_code == 400
    assert {key.split(".")[0] for key in response.get_json()["errors"]} == {field}


# Disable, enable, delete


def test_disable_revokes_everything_and_enable_lets_the_user_back(
    app: Flask,
    client: FlaskClient,
    add_user: AddUser,
    staff_token: StaffToken,
    redis_client: redis.Redis,
) -> None:
    alice_id = add_user("alice")
    pair = log_in(client, "alice").get_json()
    staff = staff_token(user=["update"])

    disabled = client.put("/users/alice/disable", headers=bearer(staff))

    assert disabled.status_code == 200
    assert disabled.get_json() == {"message": "User disabled"}
    assert redis_client.exists(user_key(alice_id))
    assert client.get("/users/alice", headers=bearer(pair["access"])).status_code == 401
    assert client.post("/auth/token/refresh/", json={"refresh": pair["refresh"]}).status_code == 401
    assert log_in(client, "alice").status_code == 401

    enabled = client.put("/users/alice/enable", headers=bearer(staff))

    assert enabled.get_json() == {"message": "User enabled"}
    assert log_in(client, "alice").status_code == 200
    assert client.post("/auth/token/refresh/", json={"refresh": pair["refresh"]}).status_code == 401


def test_who_may_disable(
    app: Flask,
    client: FlaskClient,
    add_user: AddUser,
    token_for: TokenFor,
    staff_token: StaffToken,
) -> None:
    add_user("alice")
    add_user("bob")
    add_user("a_staff", role="staff", privileges={})
    add_user("root", role="superuser")

    def disable(username: str, token: str | None) -> int:
        headers = bearer(token) if token else {}
        return client.put(f"/users/{username}/disable", headers=headers).status_code

    assert disable("alice", None) == 401
    assert disable("alice", token_for("bob")) == 403
    assert disable("alice", staff_token(user=["read"])) == 403
    updater = staff_token(user=["update"])
    assert disable("nobody", updater) == 404
    assert disable("a_staff", updater) == 403
    assert disable("root", updater) == 403
    assert disable("staff_2", updater) == 422  # one's own account
    superuser = staff_token(role="superuser")
    assert disable("root", superuser) == 200
    assert stored_user(app, "alice").is_active is True


def test_delete_removes_the_account_and_all_it_owns(
    app: Flask,
    client: FlaskClient,
    add_user: AddUser,
    staff_token: StaffToken,
    media: MediaServer,
    redis_client: redis.Redis,
) -> None:
    alice_id = add_user("alice")
    pair = log_in(client, "alice").get_json()
    client.post("/api-token-auth/", json={"username": "alice", "password": PASSWORD})
    client.post("/users/alice/password/reset")
    client.put(
        "/users/alice/pictureupload",
        data={"profilePicture": (io.BytesIO(image_bytes()), "me.png")},
        headers=bearer(pair["access"]),
        content_type="multipart/form-data",
    )
    picture = stored_user(app, "alice").profile_picture
    assert picture is not None
    row_id = stored_user(app, "alice").id
    with app.app_context():
        db.session.add(LinkedIdentity(user_id=row_id, provider="google", subject="g-1"))
        db.session.commit()

    def owned() -> list[int]:
        with app.app_context():
            return [
                db.session.query(model).filter_by(user_id=row_id).count()
                for model in (RefreshToken, ApiToken, PasswordResetToken, LinkedIdentity)
            ]

    assert all(owned())

    response = client.delete("/users/alice/", headers=bearer(staff_token(user=["delete"])))

    assert response.status_code == 200
    assert response.get_json() == {"message": "User deleted"}
    assert redis_client.exists(user_key(alice_id))
    assert media.fetch(picture).status_code == 404
    assert media.files_on_disk() == []
    with app.app_context():
        assert db.session.query(User).filter_by(username="alice").count() == 0
    assert owned() == [0, 0, 0, 0]
    assert client.post("/auth/token/refresh/", json={"refresh": pair["refresh"]}).status_code == 401
    assert log_in(client, "alice").status_code == 401


def test_who_may_delete(
    app: Flask, client: FlaskClient, add_user: AddUser, token_for: TokenFor, staff_token: StaffToken
) -> None:
    add_user("alice")

    assert client.delete("/users/alice").status_code == 401
    assert client.delete("/users/alice", headers=bearer(token_for("alice"))).status_code == 403
    updater = staff_token(user=["read", "update"])
    assert client.delete("/users/alice", headers=bearer(updater)).status_code == 403
    deleter = staff_token(user=["delete"])
    assert client.delete("/users/nobody", headers=bearer(deleter)).status_code == 404
    assert client.delete("/users/staff_2", headers=bearer(deleter)).status_code == 422
    assert stored_user(app, "alice").username == "alice"
