"""The gateway's own answers: JSON `{"error", "code"}`, never HTML."""

from __future__ import annotations

from collections.abc import Iterable

import orjson


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        closes: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)
        # The connection is closed after the answer (the request's framing is in doubt).
        self.closes = closes


REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


def status_line(status: int, reason: str | None = None) -> str:
    return f"{status} {reason or REASONS.get(status, 'Unknown')}"


def json_body(payload: object) -> tuple[bytes, list[tuple[str, str]]]:
    body = orjson.dumps(payload)
    return body, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
