"""The route table's building blocks: a declarative `Route`, its policies and the matcher.

Patterns are paths with `<name>` for one segment and `<path:name>` for the rest of
the path (slashes included). Every pattern matches with or without a trailing slash.
The table is ordered: the first route whose pattern and method match wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

ANY_METHOD = "*"
# A credential route's body (a username and a password, or a token) is read whole.
CREDENTIAL_MAX_BODY = 64 * 1024
# `<name>` (one segment) or `<path:name>` (the rest of the path) in a route pattern.
PARAMETER = re.compile(r"<(?:(path):)?([A-Za-z_][A-Za-z0-9_]*)>")


class Policy(StrEnum):
    """Who may call a route (a token, when one is sent, is verified whatever the policy)."""

    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    STAFF = "staff"


PUBLIC = Policy.PUBLIC
AUTHENTICATED = Policy.AUTHENTICATED
STAFF = Policy.STAFF


@dataclass(frozen=True)
class Route:
    """One line of the route table.

    methods: space-separated HTTP methods ("GET POST") or "*" for any.
    pattern: the path as the gateway exposes it, e.g. "/users/<username>/privileges".
    upstream: the service name ("auth", "events", …), resolved to a base URL by config.
    policy: who may call it; a token, when one is sent, is always verified.
    max_body: request body limit in bytes for this route (None: the gateway default).
    timeout: read timeout in seconds for this route (None: the gateway default).
    credential: the route takes a password or hands out tokens. Its body is read whole
        (at most CREDENTIAL_MAX_BODY) for the username it names, and the stricter login
        rate limits apply to it, per client address and per username.
    """

    methods: str
    pattern: str
    upstream: str
    policy: Policy
    max_body: int | None = None
    timeout: float | None = None
    credential: bool = False
    method_set: frozenset[str] = field(init=False, repr=False, compare=False)
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.credential and self.max_body is not None:
            raise ValueError(f"{self.pattern}: credential routes share CREDENTIAL_MAX_BODY")
        methods = frozenset(m.upper() for m in self.methods.split())
        if "GET" in methods:
            methods |= {"HEAD"}
        object.__setattr__(self, "method_set", methods)
        object.__setattr__(self, "regex", compile_pattern(self.pattern))

    def allows(self, method: str) -> bool:
        return ANY_METHOD in self.method_set or method in self.method_set

    def body_limit(self, default: int) -> int:
        """This route's request body limit in bytes, given the gateway's default."""
        if self.credential:
            return CREDENTIAL_MAX_BODY
        return self.max_body or default


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Turn "/users/<username>/x" into an anchored regex that ignores a trailing slash."""
    if not pattern.startswith("/"):
        raise ValueError(f"route pattern must start with '/': {pattern!r}")
    regex, position = "", 0
    for param in PARAMETER.finditer(pattern):
        regex += re.escape(pattern[position : param.start()])
        is_path, name = param.group(1), param.group(2)
        regex += f"(?P<{name}>.+?)" if is_path else f"(?P<{name}>[^/]+)"
        position = param.end()
    regex += re.escape(pattern[position:].rstrip("/"))
    return re.compile(f"^{regex}/?$")


@dataclass(frozen=True)
class Match:
    """The route a request goes to, and the values of its pattern's parameters."""

    route: Route
    params: dict[str, str]


class RouteTable:
    """The ordered routes (each compiled when it is declared) and the first-match lookup."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.routes = routes

    def match(self, method: str, path: str) -> tuple[Match | None, set[str]]:
        """The first route matching method and path, else the methods the path allows.

        Returns (match, set()) on a hit; (None, allowed_methods) when the path is known
        but not for this method (405); (None, set()) for an unknown path (404).
        """
        allowed: set[str] = set()
        for route in self.routes:
            found = route.regex.match(path)
            if found is None:
                continue
            if route.allows(method):
                return Match(route, found.groupdict()), set()
            allowed |= route.method_set
        return None, allowed
