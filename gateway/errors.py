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


def json_body(payload: object) -> tuple[bytes, list[tuple[str, str]]]:
    body = orjson.dumps(payload)
    return body, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
