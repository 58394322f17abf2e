"""Render the route table as Markdown: `python -m gateway.routemap > docs/routes.md`.

A test checks that docs/routes.md is what this prints, so the document cannot drift.
"""

from __future__ import annotations

from gateway.routes import ROUTES
from gateway.routing import Route

HEADER = """# Route map

Every route the gateway serves, in matching order (the first match wins). Generated from
`gateway/routes.py` by `python -m gateway.routemap`; do not edit by hand.

Policies: `public` (no token needed; an invalid token is ignored), `authenticated` (a valid,
unrevoked access token), `staff` (role staff or superuser; services check finer privileges).

| methods | path | service | policy | body limit |
|---|---|---|---|---|
"""


def _limit(route: Route) -> str:
    if route.max_body is None:
        return "default"
    return f"{route.max_body // (1024 * 1024)} MiB"


def render() -> str:
    rows = [
        f"| {route.methods} | `{route.pattern}` | {route.upstream}_service | "
        f"{route.policy.value} | {_limit(route)} |"
        for route in ROUTES
    ]
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render(), end="")
