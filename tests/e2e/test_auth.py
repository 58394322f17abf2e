"""auth_service through the gateway: the seed's user, auth and token requests, and every
way a token is revoked, seen by the gateway on the very next request."""

from __future__ import annotations

import io
import re
import time
import uuid
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import redis
import requests
from PIL import Image

from devstack.stack import Stack
from tests.e2e.e2e_helpers import PASSWORD, TIMEOUT, bearer, login, new_user

USER_KEYS = {
    "publicId", "username", "firstName", "lastName", "email", "phoneNumber",
    "collegeName", "profilePicture", "dateJoined", "lastLogin",
}  # fmt: skip
REVOKED = {"error": "token revoked", "code": "unauthorized"}


def get_record(gateway: str, username: str, token: str, scheme: str = "Bearer") -> Any:
    return requests.get(
        f"{gateway}/users/{username}",
        headers={"Authorization": f"{scheme} {token}"},
        timeout=TIMEOUT,
    )


def assert_revoked(gateway: str, username: str, token: str, scheme: str = "Bearer") -> None:
    refused = get_record(gateway, username, token, scheme)
    assert refused.status_code == 401, refused.text
    assert refused.json() == REVOKED


def refresh(gateway: str, token: str) -> Any:
    return requests.post(f"{gateway}/auth/token/refresh/", json={"refresh": token}, timeout=TIMEOUT)


def test_the_seed_user_requests(gateway_url: str, admin_token: str) -> None:
    username = new_user(gateway_url, "auth")
    tokens = login(gateway_url, username)

    record = get_record(gateway_url, username, tokens["access"])
    updated = requests.put(
        f"{gateway_url}/users/{username}?=",
        json={"firstName": "Tested", "collegeName": "Test College 456"},
        headers=bearer(tokens["access"]),
        timeout=TIMEOUT,
    )
    modes = requests.get(
        f"{gateway_url}/users/{username}/auth_modes",
        headers=bearer(tokens["access"]),
        timeout=TIMEOUT,
    )
    state = requests.get(
        f"{gateway_url}/users/{username}/privileges", headers=bearer(admin_token), timeout=TIMEOUT
    )
    page = requests.get(
        f"{gateway_url}/users?limit=10", headers=bearer(admin_token), timeout=TIMEOUT
    )
    past_the_end = requests.get(
        f"{gateway_url}/users?limit=10&page=100000", headers=bearer(admin_token), timeout=TIMEOUT
    )

    assert record.status_code == 200 and set(record.json()) == USER_KEYS
    assert record.json()["lastLogin"] is not None
    assert updated.status_code == 200
    assert (updated.json()["firstName"], updated.json()["collegeName"]) == (
        "Tested",
        "Test College 456",
    )
    assert modes.json() == {"password": True, "o-auth": []}
    assert state.json() == {"state": "normal"}
    assert page.status_code == 200
    assert set(page.json()) == {"currentPage", "noOfPages", "users"}
    assert past_the_end.status_code == 400
    assert past_the_end.json()["message"] == "This page does not exist"


def test_disabling_revokes_at_the_gateway_at_once(gateway_url: str, admin_token: str) -> None:
    username = new_user(gateway_url, "auth")
    tokens = login(gateway_url, username)
    assert get_record(gateway_url, username, tokens["access"]).status_code == 200

    disabled = requests.put(
        f"{gateway_url}/users/{username}/disable", headers=bearer(admin_token), timeout=TIMEOUT
    )

    assert disabled.status_code == 200
    assert_revoked(gateway_url, username, tokens["access"])
    assert refresh(gateway_url, tokens["refresh"]).status_code == 401
    enabled = requests.put(
        f"{gateway_url}/users/{username}/enable", headers=bearer(admin_token), timeout=TIMEOUT
    )
    assert enabled.status_code == 200
    fresh = login(gateway_url, username)["access"]
    assert get_record(gateway_url, username, fresh).status_code == 200


def test_deleting_revokes_at_the_gateway_at_once(gateway_url: str, admin_token: str) -> None:
    username = new_user(gateway_url, "auth")
    tokens = login(gateway_url, username)

    deleted = requests.delete(
        f"{gateway_url}/users/{username}/", headers=bearer(admin_token), timeout=TIMEOUT
    )

    assert deleted.status_code == 200
    assert_revoked(gateway_url, username, tokens["access"])
    gone = requests.post(
        f"{gateway_url}/auth/token/",
        json={"username": username, "password": PASSWORD},
        timeout=TIMEOUT,
    )
    assert gone.status_code == 401


def test_a_password_change_revokes_at_the_gateway_at_once(gateway_url: str) -> None:
    username = new_user(gateway_url, "auth")
    tokens = login(gateway_url, username)

    changed = requests.put(
        f"{gateway_url}/users/{username}/password/",
        json={"oldPassword": PASSWORD, "newPassword": "a new password 2"},
        headers=bearer(tokens["access"]),
        timeout=TIMEOUT,
    )

    assert changed.status_code == 200
    assert_revoked(gateway_url, username, tokens["access"])
    fresh = login(gateway_url, username, "a new password 2")["access"]
    assert get_record(gateway_url, username, fresh).status_code == 200


def test_sign_out_everywhere_and_from_one_device(gateway_url: str) -> None:
    username = new_user(gateway_url, "auth")
    phone, laptop, tablet = (login(gateway_url, username) for _ in range(3))

    one = requests.put(
        f"{gateway_url}/auth/token/",
        json={"token": phone["refresh"]},
        headers=bearer(laptop["access"]),
        timeout=TIMEOUT,
    )

    assert one.json() == {"tokens_deleted": 1}
    assert_revoked(gateway_url, username, phone["access"])
    assert get_record(gateway_url, username, laptop["access"]).status_code == 200

    everywhere = requests.delete(
        f"{gateway_url}/auth/token/", headers=bearer(tablet["access"]), timeout=TIMEOUT
    )

    assert everywhere.status_code == 200
    assert everywhere.json() == {"tokens_deleted": 3}  # laptop's and tablet's refresh, this one
    for session in (laptop, tablet):
        assert_revoked(gateway_url, username, session["access"])
        assert refresh(gateway_url, session["refresh"]).status_code == 401


def test_refresh_rotation_and_reuse_detection(gateway_url: str) -> None:
    username = new_user(gateway_url, "auth")
    first = login(gateway_url, username)

    rotated = refresh(gateway_url, first["refresh"])

    assert rotated.status_code == 200
    second = rotated.json()
    assert set(second) == {"access", "refresh"}
    assert get_record(gateway_url, username, second["access"]).status_code == 200

    replay = refresh(gateway_url, first["refresh"])

    assert replay.status_code == 401
    assert_revoked(gateway_url, username, second["access"])
    assert refresh(gateway_url, second["refresh"]).status_code == 401


def test_a_role_change_revokes_and_the_next_login_carries_it(
    gateway_url: str, admin_token: str
) -> None:
    username = new_user(gateway_url, "auth")
    before = login(gateway_url, username)["access"]
    refused = requests.get(f"{gateway_url}/users", headers=bearer(before), timeout=TIMEOUT)
    assert refused.status_code == 403

    granted = requests.put(
        f"{gateway_url}/users/{username}/privileges",
        json={"state": "staff", "privileges": {"user": ["read"]}},
        headers=bearer(admin_token),
        timeout=TIMEOUT,
    )

    assert granted.json() == {"state": "staff", "privileges": {"user": ["read"]}}
    assert_revoked(gateway_url, username, before)
    after = login(gateway_url, username)["access"]
    listed = requests.get(f"{gateway_url}/users", headers=bearer(after), timeout=TIMEOUT)
    assert listed.status_code == 200


def test_the_image_api_token_flows(gateway_url: str) -> None:
    username = f"demo_{uuid.uuid4().hex[:8]}"
    registered = requests.post(
        f"{gateway_url}/register/",
        data={"username": username, "password": "demouser"},
        timeout=TIMEOUT,
    )
    assert registered.status_code == 201, registered.text
    first = registered.json()["token"]
    second = requests.post(
        f"{gateway_url}/api-token-auth/",
        json={"username": username, "password": "demouser"},
        timeout=TIMEOUT,
    ).json()["token"]
    bad = requests.post(
        f"{gateway_url}/api-token-auth/",
        json={"username": username, "password": "wrong password"},
        timeout=TIMEOUT,
    )
    assert bad.status_code == 400
    assert get_record(gateway_url, username, first, "Token").status_code == 200

    regenerated = requests.get(
        f"{gateway_url}/regenerateToken/",
        headers={"Authorization": f"Token {second}"},
        timeout=TIMEOUT,
    )

    assert regenerated.status_code == 200
    new = regenerated.json()["token"]
    for old in (first, second):
        assert_revoked(gateway_url, username, old, "Token")
    assert get_record(gateway_url, username, new, "Token").status_code == 200


def test_profile_picture_upload_and_public_fetch(gateway_url: str) -> None:
    username = new_user(gateway_url, "auth")
    access = login(gateway_url, username)["access"]
    picture = io.BytesIO()
    Image.new("RGB", (12, 10), "teal").save(picture, format="PNG")

    uploaded = requests.put(
        f"{gateway_url}/users/{username}/pictureupload",
        files={"profilePicture": ("me.png", picture.getvalue(), "image/png")},
        headers=bearer(access),
        timeout=TIMEOUT,
    )
    not_an_image = requests.put(
        f"{gateway_url}/users/{username}/pictureupload",
        files={"profilePicture": ("me.png", b"<html>not an image</html>", "image/png")},
        headers=bearer(access),
        timeout=TIMEOUT,
    )

    assert uploaded.status_code == 202
    assert uploaded.json() == {"message": "Profile Picture Updated"}
    assert not_an_image.status_code == 422
    assert not_an_image.json() == {"error": "Only image type data allowed"}
    url = get_record(gateway_url, username, access).json()["profilePicture"]
    fetched = requests.get(gateway_url + url, timeout=TIMEOUT)  # no token: public
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).size == (12, 10)


def mailed_token(outbox: Path, address: str, timeout: float = 10.0) -> str:
    """The reset token mailed to `address` (the stack writes mail to its outbox)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml")) if outbox.is_dir() else []:
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] == address:
                text = message.get_content()  # type: ignore[attr-defined]
                return str(re.findall(r"^ {4}(\S+)\r?$", text, flags=re.MULTILINE)[0])
        time.sleep(0.05)
    raise AssertionError(f"no mail to {address} within {timeout} s")


def test_password_reset_by_mail(stack: Stack, gateway_url: str) -> None:
    username = new_user(gateway_url, "auth")
    before = login(gateway_url, username)["access"]

    requested = requests.post(f"{gateway_url}/users/{username}/password/reset", timeout=TIMEOUT)
    token = mailed_token(stack.var / "outbox", f"{username}@example.org")
    reset = requests.patch(
        f"{gateway_url}/users/{username}/password/",
        json={"resetToken": token, "newPassword": "after the reset"},
        timeout=TIMEOUT,
    )
    again = requests.patch(
        f"{gateway_url}/users/{username}/password/",
        json={"resetToken": token, "newPassword": "once more please"},
        timeout=TIMEOUT,
    )

    assert requested.status_code == 202
    assert reset.status_code == 200
    assert reset.json() == {"message": "Password reset successfully"}
    assert again.status_code == 422
    assert_revoked(gateway_url, username, before)
    assert get_record(
        gateway_url, username, login(gateway_url, username, "after the reset")["access"]
    ).ok


def test_failed_logins_are_throttled(stack: Stack, gateway_url: str) -> None:
    username = new_user(gateway_url, "auth")
    store = redis.Redis.from_url(stack.env()["REDIS_URL"])
    try:
        statuses = [
            requests.post(
                f"{gateway_url}/auth/token/",
                json={"username": username, "password": "wrong password"},
                timeout=TIMEOUT,
            ).status_code
            for _ in range(10)
        ]
        blocked = requests.post(
            f"{gateway_url}/auth/token/",
            json={"username": username, "password": PASSWORD},
            timeout=TIMEOUT,
        )

        assert set(statuses) <= {401, 429}
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) >= 1
    finally:  # the other tests log in from the same address
        for key in store.scan_iter("auth:throttle:login:*"):
            store.delete(key)
        store.close()
