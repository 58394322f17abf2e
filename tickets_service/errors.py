"""tickets_service's refusals. Where the document fixes a body (a page past the end), the
refusal answers exactly that body; every other one has the suite's `{"error", "code"}`."""

from __future__ import annotations

from typing import Any

from servicekit.errors import DomainError


class TicketNotFound(DomainError):
    """No such ticket, or a private one the caller may not see (its existence is not told)."""

    status, code, message = 404, "not_found", "no such ticket"


class Forbidden(DomainError):
    status, code, message = 403, "forbidden", "not allowed"


class PageNotFound(DomainError):
    status, code, message = 400, "page_not_found", "This page does not exist"

    def __init__(self, page_size: int, pages: int) -> None:
        super().__init__()
        self.page_size = page_size
        self.pages = pages

    def body(self) -> dict[str, Any]:  # the document's body (its user list's)
        return {"message": self.detail, "pageSize": self.page_size, "noOfPages": self.pages}


class TooManyRequests(DomainError):
    status, code = 429, "too_many_requests"

    def __init__(self, what: str, limit: int, retry_after: int) -> None:
        super().__init__(f"at most {limit} {what} per hour: try again in {retry_after} s")
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
