"""Real loopback servers for servicekit's tests: a JWKS publisher, an echo, a token issuer."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

SERVICE_SECRET = "s3cret-for-tests"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


class JwksServer:
    """Publishes `self.jwks` at /.well-known/jwks.json and counts the requests."""

    def __init__(self, jwks: dict[str, Any], delay: float = 0.0) -> None:
        self.jwks: Any = jwks
        self.delay = delay
        self.requests = 0
        self._lock = threading.Lock()

    @Request.application
    def __call__(self, request: Request) -> Response:
        with self._lock:
            self.requests += 1
        time.sleep(self.delay)
        if isinstance(self.jwks, str):
            return Response(self.jwks, mimetype="application/json")
        return json_response(self.jwks)


@Request.application
def echo_app(request: Request) -> Response:
    """Answers the headers it received; `/slow/<seconds>` sleeps first."""
    if request.path.startswith("/slow/"):
        time.sleep(float(request.path.rsplit("/", 1)[1]))
    headers = {name.lower(): value for name, value in request.headers.items()}
    return json_response({"path": request.path, "headers": headers})


class TokenServer:
    """Imitates auth_service's internal token route: a new token per call, counted."""

    def __init__(self, expires_in: float) -> None:
        self.expires_in = expires_in
        self.issued: list[str] = []

    @Request.application
    def __call__(self, request: Request) -> Response:
        if request.method != "POST" or request.path != "/internal/service-token":
            return json_response({"error": "not found", "code": "not_found"}, 404)
        if request.headers.get("X-Service-Secret") != SERVICE_SECRET:
            return json_response({"error": "bad secret", "code": "forbidden"}, 403)
        service = (request.get_json(silent=True) or {}).get("service")
        token = f"token-{service}-{uuid.uuid4().hex}"
        self.issued.append(token)
        return json_response({"access": token, "expires_in": self.expires_in})
