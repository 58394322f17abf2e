"""What a map write does to the documents waiting for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

AfterWrite = Callable[[Session, Any, dict[str, Any] | None], None]


def after_write(kind: str) -> AfterWrite:
    """The `after_write` hook of the `<kind>_map` resource (kind: region, campaign or
    indicator)."""

    def merge_waiting(session: Session, row: Any, previous: dict[str, Any] | None) -> None:
        return None

    return merge_waiting
