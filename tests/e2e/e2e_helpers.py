"""What every end-to-end test does as a client: register users, log in, send tokens."""

from __future__ import annotations

import uuid

import requests

PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "e2e-admin-password"  # the stack's bootstrap superuser
TIMEOUT = 10
# What every stack of these tests runs with, beside its own ports, databases and secrets.
STACK_SETTINGS = {
    "ADMIN_PASSWORD": ADMIN_PASSWORD,
    "LOG_LEVEL": "WARNING",
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "1024",
    # Every test logs in from 127.0.0.1: the limits are tested on their own.
    "GATEWAY_LOGIN_RATE_LIMIT": "100000/minute",
    "GATEWAY_LOGIN_USER_RATE_LIMIT": "100000/minute",
    "GATEWAY_RATE_LIMIT": "100000/minute",
    "GATEWAY_USER_RATE_LIMIT": "100000/minute",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_user(gateway_url: str, prefix: str = "user") -> str:
    """Register a fresh account (the seed's "Create New User" body); return its username."""
    username = f"{prefix}_{uuid.uuid4().hex[:10]}"
    response = requests.post(
        f"{gateway_url}/users/",
        json={
            "username": username,
            "firstName": "Test",
            "lastName": "User",
            "email": f"{username}@example.org",
            "password": PASSWORD,
            "phoneNumber": "+911234567890",
            "collegeName": "Test College 123",
            "profilePicture": "url_to_profile_pic",
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return username


def login(gateway_url: str, username: str, password: str = PASSWORD) -> dict[str, str]:
    """A token pair: {"access", "refresh"}."""
    response = requests.post(
        f"{gateway_url}/auth/token/",
        json={"username": username, "password": password},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())
