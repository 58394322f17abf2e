"""The engine's refusals (the suite's `{"error", "code"}` shape, `errors` per parameter)."""

from __future__ import annotations

from servicekit.errors import DomainError


class InvalidParameters(DomainError):
    """A query string the engine does not understand: `errors` names each parameter."""

    status, code, message = 400, "invalid_parameters", "invalid query parameters"


class InvalidValues(DomainError):
    """A write with unknown, missing or invalid columns: `errors` names each one."""

    status, code, message = 400, "invalid_values", "invalid values"


class Conflict(DomainError):
    """A duplicate value, or a delete of a row others refer to: `errors` says which."""

    status, code, message = 409, "conflict", "conflicts with existing rows"


class NotFound(DomainError):
    status, code, message = 404, "not_found", "no such object"


class Forbidden(DomainError):
    status, code, message = 403, "forbidden", "not allowed"


class ReadOnly(DomainError):
    """A write to a resource this service does not write (its answer names where to go)."""

    status, code, message = 405, "method_not_allowed", "this resource is read-only"

    def headers(self) -> dict[str, str]:
        return {"Allow": "GET, HEAD"}
