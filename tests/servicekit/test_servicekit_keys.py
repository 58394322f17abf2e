"""Public keys from a JWKS URL: cached, refetched on rotation, rate limited, fail closed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from servicekit.keys import RemoteKeySet, StaticKeySet, parse_jwks
from servicekit.testing import TestKeys, serve_wsgi
from tests.servicekit.servicekit_harness import JwksServer, bearer

JWKS_PATH = "/.well-known/jwks.json"


@pytest.fixture(scope="module")
def rotated_keys() -> TestKeys:
    """The key auth_service rotates to."""
    return TestKeys()


@pytest.fixture
def jwks_server(test_keys: TestKeys) -> Iterator[tuple[JwksServer, str]]:
    server = JwksServer(test_keys.jwks)
    with serve_wsgi(server) as url:
        yield server, url + JWKS_PATH


def test_rotated_kid_triggers_exactly_one_refetch(
    make_app, jwks_server: tuple[JwksServer, str], test_keys: TestKeys, rotated_keys: TestKeys
) -> None:
    server, url = jwks_server
    client = make_app(keys=RemoteKeySet(url, min_refresh_interval=0)).test_client()
    old_token, new_token = test_keys.token(), rotated_keys.token(sub="after-rotation")

    assert client.get("/me", headers=bearer(old_token)).status_code == 200
    assert client.get("/me", headers=bearer(old_token)).status_code == 200
    assert server.requests == 1

    server.jwks = {"keys": test_keys.jwks["keys"] + rotated_keys.jwks["keys"]}
    response = client.get("/me", headers=bearer(new_token))
    assert response.status_code == 200
    assert response.get_json()["subject"] == "after-rotation"
    assert server.requests == 2

    for token in (new_token, old_token, new_token):
        assert client.get("/me", headers=bearer(token)).status_code == 200
    assert server.requests == 2


def test_unknown_kids_refetch_at_most_once_per_interval(
    jwks_server: tuple[JwksServer, str], test_keys: TestKeys
) -> None:
    server, url = jwks_server
    keys = RemoteKeySet(url, min_refresh_interval=60)
    for kid in ("made-up-1", "made-up-2", "made-up-1", test_keys.kid, "made-up-3"):
        keys.key_for(kid)
    assert server.requests == 1
    assert keys.key_for(test_keys.kid) is not None


def test_refetch_allowed_again_after_interval(
    jwks_server: tuple[JwksServer, str], test_keys: TestKeys, rotated_keys: TestKeys
) -> None:
    server, url = jwks_server
    keys = RemoteKeySet(url, min_refresh_interval=0.2)
    assert keys.key_for(rotated_keys.kid) is None
    server.jwks = rotated_keys.jwks
    time.sleep(0.25)
    assert keys.key_for(rotated_keys.kid) is not None
    assert server.requests == 2


def test_concurrent_unknown_kids_fetch_once(jwks_server: tuple[JwksServer, str]) -> None:
    server, url = jwks_server
    keys = RemoteKeySet(url, min_refresh_interval=60)
    start = threading.Barrier(8)

    def look_up(index: int) -> None:
        start.wait()
        keys.key_for(f"unknown-{index}")

    threads = [threading.Thread(target=look_up, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert server.requests == 1


def test_cold_start_under_load_finds_the_key_for_every_caller(test_keys: TestKeys) -> None:
    """Callers arriving while the first fetch is in flight wait for it, not fail."""
    server = JwksServer(test_keys.jwks, delay=0.3)
    with serve_wsgi(server) as url:
        keys = RemoteKeySet(url + JWKS_PATH, min_refresh_interval=60)
        start = threading.Barrier(8)
        found: list[Any] = []

        def look_up() -> None:
            start.wait()
            found.append(keys.key_for(test_keys.kid))

        threads = [threading.Thread(target=look_up) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert len(found) == 8 and all(key is not None for key in found)
    assert server.requests == 1


def test_a_failed_fetch_is_retried_after_a_second_not_the_interval(
    test_keys: TestKeys, dead_url: str
) -> None:
    keys = RemoteKeySet(dead_url + JWKS_PATH, min_refresh_interval=60, timeout=0.2)
    assert keys.key_for(test_keys.kid) is None
    assert not keys._may_refresh()
    time.sleep(1.1)
    assert keys._may_refresh()


def test_flood_of_made_up_kids_through_a_service(
    make_app, jwks_server: tuple[JwksServer, str], test_keys: TestKeys
) -> None:
    """The default resolver of a service is a RemoteKeySet on `JWKS_URL`."""
    server, url = jwks_server
    client = make_app(keys=None, JWKS_URL=url).test_client()
    assert client.get("/me", headers=bearer(test_keys.token())).status_code == 200
    for index in range(10):
        token = test_keys.token(headers={"kid": f"made-up-{index}"})
        assert client.get("/me", headers=bearer(token)).status_code == 401
    assert server.requests == 1


def test_missing_kid_never_fetches(jwks_server: tuple[JwksServer, str]) -> None:
    server, url = jwks_server
    keys = RemoteKeySet(url)
    assert keys.key_for(None) is None
    assert keys.key_for("") is None
    assert server.requests == 0


def test_jwks_server_down(make_app, dead_url: str, test_keys: TestKeys) -> None:
    assert RemoteKeySet(dead_url + JWKS_PATH).key_for(test_keys.kid) is None
    client = make_app(keys=None, JWKS_URL=dead_url + JWKS_PATH).test_client()
    response = client.get("/me", headers=bearer(test_keys.token()))
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


@pytest.mark.parametrize(
    "document",
    ["<html>oops</html>", [], {"keys": "none"}, {"keys": [None, 5, "x"]}, {"nothing": 1}],
    ids=["not-json", "list", "keys-not-a-list", "entries-not-objects", "no-keys"],
)
def test_malformed_jwks_fails_closed(
    make_app, jwks_server: tuple[JwksServer, str], test_keys: TestKeys, document: Any
) -> None:
    server, url = jwks_server
    server.jwks = document
    assert RemoteKeySet(url).key_for(test_keys.kid) is None
    client = make_app(keys=None, JWKS_URL=url).test_client()
    assert client.get("/me", headers=bearer(test_keys.token())).status_code == 401


def test_one_broken_key_does_not_hide_the_others(
    make_app, jwks_server: tuple[JwksServer, str], test_keys: TestKeys
) -> None:
    server, url = jwks_server
    broken = [
        {"kty": "RSA", "kid": "broken", "use": "sig", "n": "!!", "e": "AQAB"},
        {"kty": "RSA", "kid": "no-modulus", "e": "AQAB"},
        {"kty": "RSA", "kid": "number", "n": 5, "e": "AQAB"},
        {"kty": "RSA", "kid": ["a", "list"], "n": "AQAB", "e": "AQAB"},
    ]
    server.jwks = {"keys": [*broken, *test_keys.jwks["keys"]]}
    client = make_app(keys=None, JWKS_URL=url).test_client()
    assert client.get("/me", headers=bearer(test_keys.token())).status_code == 200
    broken_token = test_keys.token(headers={"kid": "broken"})
    assert client.get("/me", headers=bearer(broken_token)).status_code == 401


def test_parse_jwks_keeps_only_rsa_signing_keys(test_keys: TestKeys) -> None:
    rsa_key = test_keys.jwks["keys"][0]
    without_use = {k: v for k, v in rsa_key.items() if k != "use"}
    document = {
        "keys": [
            rsa_key,
            {**without_use, "kid": "no-use"},
            {**rsa_key, "kid": "for-encryption", "use": "enc"},
            {**rsa_key, "kid": ""},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA", "use": "sig"},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
        ]
    }
    assert set(parse_jwks(document)) == {test_keys.kid, "no-use"}


def test_static_key_set(test_keys: TestKeys) -> None:
    keys = StaticKeySet(test_keys.jwks)
    assert keys.key_for(test_keys.kid) is not None
    assert keys.key_for("other") is None
    assert keys.key_for(None) is None
