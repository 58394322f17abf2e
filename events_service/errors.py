"""Refusals shared by events_service's domains (each domain adds its own beside its service).

Where the document fixes a refusal's body (`{"error": "Category does not exist."}`,
`{"message": "Team already registered for event", ...}`), the refusal answers exactly
that body; every other refusal has the suite's `{"error", "code"}` shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from servicekit.errors import DomainError


class DocumentRefusal(DomainError):
    """A 422 whose body is the document's single `error` key."""

    status, code = 422, "unprocessable"

    def body(self) -> dict[str, Any]:
        return {"error": self.detail}


class EventNotFound(DomainError):
    status, code, message = 404, "not_found", "no such event"


class TeamNotFound(DomainError):
    status, code, message = 404, "not_found", "no such team"


class RegistrationNotFound(DomainError):
    status, code, message = 404, "not_found", "no such registration"


class Forbidden(DomainError):
    status, code, message = 403, "forbidden", "not allowed"


class UnknownUsers(DomainError):
    """Usernames auth_service does not know (or whose accounts are disabled)."""

    status, code = 422, "unknown_user"

    def __init__(self, usernames: Iterable[str], field: str = "username") -> None:
        names = list(usernames)
        listed = ", ".join(repr(name) for name in names)
        noun = "user" if len(names) == 1 else "users"
        super().__init__(f"no such {noun}: {listed}", errors={field: f"unknown: {listed}"})


class DirectoryDown(DomainError):
    """auth_service's user directory did not answer: the write is refused, unchanged."""

    status, code = 503, "service_unavailable"
    message = "the user directory (auth_service) is unavailable; try again"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}
