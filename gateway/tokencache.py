"""A bounded cache of verified tokens, so a signature is checked once per token.

Only the signature and claim checks are cached; revocation is still asked of Redis on
every request. An entry lives until the token expires, and at most `max_age` seconds, so
a signing key withdrawn from the JWKS stops being honoured within that time.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any


class VerifiedTokens:
    """Claims of verified tokens, least recently used evicted first beyond `capacity`."""

    def __init__(self, capacity: int = 10_000, max_age: float = 300.0) -> None:
        self.capacity = capacity
        self.max_age = max_age
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            valid_until, claims = entry
            if time.time() >= valid_until:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return claims

    def put(self, token: str, claims: dict[str, Any], leeway: float) -> None:
        if self.capacity <= 0:
            return
        valid_until = min(float(claims["exp"]) + leeway, time.time() + self.max_age)
        with self._lock:
            self._entries[token] = (valid_until, claims)
            self._entries.move_to_end(token)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
