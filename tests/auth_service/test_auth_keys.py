"""Signing keys: creation, the JWKS, rotation, and verification with auth's own keys."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from jwt.algorithms import RSAAlgorithm

from auth_service import keys
from auth_service.context import auth_context
from auth_service.keys import (
    KeyRing,
    SigningKey,
    add_signing_key,
    drop_retired_keys,
    ensure_signing_key,
    jwk_thumbprint,
    key_files,
)
from servicekit.keys import RemoteKeySet
from servicekit.testing import TestKeys, serve_wsgi
from servicekit.tokens import TokenError, decode_token

PASSWORD = "correct horse battery"


def obtain_access(app: Flask, username: str = "key_user") -> str:
    client = app.test_client()
    client.post("/users/", json={"username": username, "email": "k@e.org", "password": PASSWORD})
    response = client.post("/auth/token/", json={"username": username, "password": PASSWORD})
    return str(response.get_json()["access"])


def test_jwks_shape(app: Flask, keys_dir: Path) -> None:
    response = app.test_client().get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert response.is_json
    (key,) = response.get_json()["keys"]
    assert {"kty", "n", "e", "kid", "use", "alg"} <= set(key)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)  # public members only
    assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")
    public = RSAAlgorithm.from_jwk(json.dumps(key))
    assert public.key_size == 2048
    assert key["kid"] == jwk_thumbprint(public)
    assert key["kid"] == SigningKey.load(key_files(keys_dir)[0]).kid


def test_the_kid_is_the_rfc7638_thumbprint() -> None:
    """The example key of RFC 7638 section 3.1 and its thumbprint."""
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc"
        "_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQ"
        "R0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bF"
        "TWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    jwk = {"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    public = RSAAlgorithm.from_jwk(json.dumps(jwk))

    assert jwk_thumbprint(public) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_key_creation_is_idempotent(tmp_path: Path) -> None:
    directory = tmp_path / "keys"

    first = KeyRing.from_directory(directory)
    second = KeyRing.from_directory(directory)

    assert first.signing_key.kid == second.signing_key.kid
    assert key_files(directory) == [directory / "key-000001.pem"]
    assert ensure_signing_key(directory) == directory / "key-000001.pem"
    assert (directory / "key-000001.pem").stat().st_mode & 0o077 == 0


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    start = threading.Barrier(4)
    found: list[Path] = []

    def create() -> None:
        start.wait()
        found.append(ensure_signing_key(directory))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert found == [directory / "key-000001.pem"] * 4
    assert [p.name for p in directory.iterdir()] == ["key-000001.pem"]  # no temporary left


def test_a_lost_race_loads_the_winners_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process links `key-000001.pem` between our look and our write."""
    directory = tmp_path / "keys"
    winner = ensure_signing_key(directory)
    winner_kid = SigningKey.load(winner).kid
    real_key_files = keys.key_files
    looks: list[Path] = []

    def first_look_sees_nothing(path: Path) -> list[Path]:
        looks.append(path)
        return [] if len(looks) == 1 else real_key_files(path)

    monkeypatch.setattr(keys, "key_files", first_look_sees_nothing)

    assert ensure_signing_key(directory) == winner
    assert SigningKey.load(winner).kid == winner_kid
    assert [p.name for p in directory.iterdir()] == ["key-000001.pem"]


def test_a_second_key_is_published_and_the_newer_one_signs(
    make_app: Callable[..., Flask], keys_dir: Path
) -> None:
    old = SigningKey.load(ensure_signing_key(keys_dir))
    new = SigningKey.load(add_signing_key(keys_dir))

    app = make_app()

    kids = {key["kid"] for key in app.test_client().get("/.well-known/jwks.json").json["keys"]}
    assert kids == {old.kid, new.kid}
    assert jwt.get_unverified_header(obtain_access(app))["kid"] == new.kid


def test_a_key_added_while_running_is_published_without_restart(app: Flask, keys_dir: Path) -> None:
    signing = jwt.get_unverified_header(obtain_access(app))["kid"]
    auth_context(app).tokens.keyring.rescan_interval = 0
    added = SigningKey.load(add_signing_key(keys_dir))

    kids = {key["kid"] for key in app.test_client().get("/.well-known/jwks.json").json["keys"]}

    assert kids == {signing, added.kid}
    assert jwt.get_unverified_header(obtain_access(app, "second_user"))["kid"] == signing


def test_a_broken_file_added_while_running_does_not_break_the_jwks(
    app: Flask, keys_dir: Path
) -> None:
    auth_context(app).tokens.keyring.rescan_interval = 0
    (keys_dir / "key-000002.pem").write_text("not a key")

    response = app.test_client().get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert len(response.get_json()["keys"]) == 1


def test_a_single_key_file(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    path = add_signing_key(tmp_path / "secret")
    app = make_app(JWT_PRIVATE_KEY_FILE=str(path), JWT_KEYS_DIR=str(tmp_path / "unused"))

    (key,) = app.test_client().get("/.well-known/jwks.json").json["keys"]

    assert key["kid"] == SigningKey.load(path).kid
    assert not (tmp_path / "unused").exists()


def test_own_tokens_and_the_given_test_keys_are_both_accepted(
    app: Flask, test_keys: TestKeys
) -> None:
    """auth signs with its own key, and verifies it even when tests pass their keys."""
    resolver = app.extensions["servicekit.keys"]
    own = obtain_access(app)

    assert resolver.key_for(jwt.get_unverified_header(own)["kid"]) is not None
    assert resolver.key_for(test_keys.kid) is not None
    assert resolver.key_for("unknown") is None
    assert jwt.get_unverified_header(own)["kid"] != test_keys.kid


def test_a_protected_route_accepts_auths_own_access_token(app: Flask) -> None:
    """servicekit's verification inside auth_service knows auth's own key."""
    from flask_jwt_extended import get_jwt, verify_jwt_in_request

    token = obtain_access(app)
    with app.test_request_context(headers={"Authorization": f"Bearer {token}"}):
        verify_jwt_in_request()
        claims: dict[str, Any] = get_jwt()

    assert claims["username"] == "key_user"


# Rotation with the command, seen through the JWKS as the gateway fetches it


def rotate(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["rotate-signing-key", *args])
    assert result.exit_code == 0, result.output
    return str(result.output)


def verifies(token: str, keys: RemoteKeySet) -> bool:
    try:
        decode_token(token, keys, issuer="flotilla", audience="flotilla", leeway=30)
    except TokenError as exc:
        assert exc.reason == "unknown signing key"
        return False
    return True


def test_rotation_keeps_old_tokens_valid_until_the_old_key_is_dropped(
    make_app: Callable[..., Flask], keys_dir: Path
) -> None:
    ttls = {"JWT_ACCESS_TTL": 60, "JWT_REFRESH_TTL": 120, "API_TOKEN_TTL": 120}
    before = make_app(**ttls)
    old_token = obtain_access(before)
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    added = rotate(before)

    assert "key-000002.pem" in added
    after = make_app(**ttls)  # a restart: the newest key signs
    new_token = obtain_access(after, "second_user")
    assert jwt.get_unverified_header(new_token)["kid"] != old_kid
    auth_context(after).tokens.keyring.rescan_interval = 0
    with serve_wsgi(after) as url:
        gateway_keys = RemoteKeySet(
            url + "/.well-known/jwks.json", min_refresh_interval=0, max_age=0
        )
        assert verifies(old_token, gateway_keys)
        assert verifies(new_token, gateway_keys)

        hour_ago = time.time() - 3600  # the new key appeared an hour ago
        os.utime(keys_dir / "key-000002.pem", (hour_ago, hour_ago))
        output = rotate(after, "--drop-older-than", "600")

        assert "dropped" in output and "key-000001.pem" in output
        assert [p.name for p in key_files(keys_dir)] == ["key-000002.pem", "key-000003.pem"]
        assert not verifies(old_token, gateway_keys)  # the cache was refreshed (max_age)
        assert not verifies(old_token, RemoteKeySet(url + "/.well-known/jwks.json"))
        assert verifies(new_token, gateway_keys)


def test_dropping_keys_younger_than_the_longest_token_lifetime_needs_force(
    make_app: Callable[..., Flask], keys_dir: Path
) -> None:
    app = make_app()  # refresh tokens live 7 days, API tokens 30
    rotate(app)

    refused = app.test_cli_runner().invoke(args=["rotate-signing-key", "--drop-older-than", "3600"])

    assert refused.exit_code != 0
    assert "longest token lifetime" in refused.output
    assert len(key_files(keys_dir)) == 3  # the new key was added, none dropped

    forced = rotate(app, "--drop-older-than", "0", "--force")

    assert "dropped" in forced
    assert [p.name for p in key_files(keys_dir)] == ["key-000004.pem"]


def test_drop_retired_keys_never_drops_the_newest(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    ensure_signing_key(directory)

    assert drop_retired_keys(directory, 0) == []
    assert len(key_files(directory)) == 1
