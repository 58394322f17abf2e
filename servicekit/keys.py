"""Public keys for verifying tokens: a JWKS document fetched from auth_service and cached.

Only public keys live here. The set is refetched when a token names an unknown `kid`
(key rotation), at most once per `min_refresh_interval`, so a flood of tokens with
made-up key ids cannot turn into a flood of JWKS requests. It is also refetched once it
is `max_age` seconds old, so a key withdrawn from the JWKS stops being trusted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Protocol

import jwt
import requests
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger(__name__)

FAILED_FETCH_RETRY = 1.0  # seconds


class KeyResolver(Protocol):
    def key_for(self, kid: str | None) -> Any | None: ...


class StaticKeySet:
    """Keys known in-process: auth_service's own keys, or a test's."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = parse_jwks(jwks)

    def key_for(self, kid: str | None) -> Any | None:
        return self._keys.get(kid) if kid else None


class RemoteKeySet:
    """A JWKS URL, cached; refetched on an unknown `kid` (rate limited) and when stale."""

    def __init__(
        self,
        url: str,
        timeout: float = 2.0,
        min_refresh_interval: float = 5.0,
        max_age: float = 300.0,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.min_refresh_interval = min_refresh_interval
        self.max_age = max_age
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def key_for(self, kid: str | None) -> Any | None:
        if not kid:
            return None
        if time.monotonic() - self._fetched_at >= self.max_age:
            self.refresh()
        key = self._keys.get(kid)
        if key is None:
            # Waits for a fetch already in flight (a cold start under load), or starts one
            # when the rate limit allows; either way the key set is then read again.
            self.refresh()
            key = self._keys.get(kid)
        return key

    def _may_refresh(self) -> bool:
        return time.monotonic() - self._fetched_at >= self.min_refresh_interval

    def refresh(self) -> None:
        with self._lock:
            if not self._may_refresh():
                return
            self._fetched_at = time.monotonic()
            try:
                response = requests.get(self.url, timeout=self.timeout)
                response.raise_for_status()
                self._keys = parse_jwks(response.json())
            except (requests.RequestException, ValueError) as exc:
                log.warning("jwks fetch failed", extra={"url": self.url, "error": str(exc)})
                # The signer may just be starting: try again after a second, not the interval.
                self._fetched_at -= max(0.0, self.min_refresh_interval - FAILED_FETCH_RETRY)


def parse_jwks(jwks: Any) -> dict[str, Any]:
    """{kid: public key} for the RSA signing keys of a JWKS document; anything else is skipped."""
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    keys: dict[str, Any] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not entry.get("kid"):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            keys[entry["kid"]] = RSAAlgorithm.from_jwk(json.dumps(entry))
        except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("jwks key skipped", extra={"kid": entry["kid"], "error": str(exc)})
    return keys


def public_jwk(public_key: Any, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(public_key))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return jwk
