"""Render the route table as Markdown: `python -m gateway.routemap > docs/routes.md`.

A test checks that docs/routes.md is what this prints, so the document cannot drift.
"""

from __future__ import annotations

from gateway.routes import MIB, ROUTES
from gateway.routing import CREDENTIAL_MAX_BODY, Route

KIB = 1024

HEADER = """# Route map

Every route the gateway serves, in matching order (the first match wins). Generated from
`gateway/routes.py` by `python -m gateway.routemap`; do not edit by hand.

Policies: `public` (no token needed; an invalid token is ignored), `authenticated` (a valid,
unrevoked access token), `staff` (role staff or superuser; services check finer privileges).

Limits: `default` is the gateway's body limit (`GATEWAY_MAX_BODY`) and read timeout
(`GATEWAY_READ_TIMEOUT`); a route may set its own. A `credential` route checks a password
or hands out a token: its body is read whole (at most {credential_body}) and the login
rate limits (`GATEWAY_LOGIN_RATE_LIMIT` per client address,
`GATEWAY_LOGIN_USER_RATE_LIMIT` per username) apply on top of the ordinary ones.

| methods | path | service | policy | limits |
|---|---|---|---|---|
"""


def _size(size: int) -> str:
    if size % MIB == 0:
        return f"{size // MIB} MiB"
    if size % KIB == 0:
        return f"{size // KIB} KiB"
    return f"{size} bytes"


def _limits(route: Route) -> str:
    limits = []
    if route.credential:
        limits.append(f"credential (body {_size(CREDENTIAL_MAX_BODY)})")
    elif route.max_body is not None:
        limits.append(f"body {_size(route.max_body)}")
    if route.timeout is not None:
        limits.append(f"read timeout {route.timeout:g} s")
    return ", ".join(limits) or "default"


def _header() -> str:
    return HEADER.format(credential_body=_size(CREDENTIAL_MAX_BODY))


def render() -> str:
    rows = [
        f"| {route.methods} | `{route.pattern}` | {route.upstream}_service | "
        f"{route.policy.value} | {_limits(route)} |"
        for route in ROUTES
    ]
    return _header() + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render(), end="")
