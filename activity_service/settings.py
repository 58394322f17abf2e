"""activity_service's settings (servicekit.settings loads and checks them at start)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from servicekit.settings import setting

MIB = 1024 * 1024


@dataclass(frozen=True)
class ActivitySettings:
    # The upload's body limit (413 beyond); the gateway's route limit is above it.
    max_body: int = setting("ACTIVITY_MAX_BODY", 50 * MIB, minimum=1024)
    max_members: int = setting("ACTIVITY_MAX_MEMBERS", 10_000, minimum=1)
    max_periods: int = setting("ACTIVITY_MAX_PERIODS", 200_000, minimum=1)
    max_period_seconds: int = setting("ACTIVITY_MAX_PERIOD_SECONDS", 7 * 24 * 3600, minimum=1)
    max_page_size: int = setting("ACTIVITY_MAX_PAGE_SIZE", 1000, minimum=1)
    max_member_filters: int = setting("ACTIVITY_MAX_MEMBER_FILTERS", 200, minimum=1)

    @property
    def max_period(self) -> timedelta:
        return timedelta(seconds=self.max_period_seconds)

    def flask_config(self) -> dict[str, Any]:
        return {"MAX_CONTENT_LENGTH": self.max_body}
