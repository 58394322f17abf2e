"""CORS at the gateway: allowed origins only, preflights answered here, never a wildcard.

An allowed origin is echoed back (with `Vary: Origin`); any other origin gets no
`Access-Control-Allow-Origin`, so the browser keeps the response from the page.
Credentials (cookies) are not part of this API — tokens travel in `Authorization`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ALLOWED_HEADERS = ("authorization", "content-type", "accept", "x-request-id")
EXPOSED_HEADERS = (
    "X-Request-ID, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
)
PREFLIGHT_MAX_AGE = "600"


class Cors:
    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(o.strip().rstrip("/") for o in origins if o.strip())

    def allowed_origin(self, headers: Mapping[str, str]) -> str | None:
        origin = headers.get("Origin")
        return origin if origin in self.origins else None

    @staticmethod
    def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
        return (
            method == "OPTIONS"
            and "Origin" in headers
            and "Access-Control-Request-Method" in headers
        )

    def response_headers(self, headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """Headers for an actual (non-preflight) response."""
        if not self.origins:
            return []
        origin = self.allowed_origin(headers)
        if origin is None:
            return [("Vary", "Origin")]
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Vary", "Origin"),
            ("Access-Control-Expose-Headers", EXPOSED_HEADERS),
        ]

    def preflight_headers(
        self, headers: Mapping[str, str], methods: set[str]
    ) -> list[tuple[str, str]]:
        """Headers answering an allowed origin's preflight for a path allowing `methods`."""
        origin = self.allowed_origin(headers)
        assert origin is not None
        requested = headers.get("Access-Control-Request-Headers", "")
        asked = [h.strip().lower() for h in requested.split(",") if h.strip()]
        allowed = [h for h in asked if h in ALLOWED_HEADERS] or list(ALLOWED_HEADERS)
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Vary", "Origin"),
            ("Access-Control-Allow-Methods", ", ".join(sorted(methods))),
            ("Access-Control-Allow-Headers", ", ".join(allowed)),
            ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE),
        ]
