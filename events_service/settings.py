"""events_service's settings (servicekit.settings loads and checks them at start).

The suite-wide ones (`SERVICE_SECRET`, `AUTH_SERVICE_URL`, `USER_DIRECTORY_TTL`, ...) are
servicekit's Flask config, not repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servicekit.config import service_url
from servicekit.settings import setting

MIB = 1024 * 1024
# Room for the multipart framing and form fields around an event's photo and logo.
FORM_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class EventsSettings:
    # media_service keeps event photos and logos (its internal file store).
    media_service_url: str = setting("MEDIA_SERVICE_URL", lambda: service_url("media"))
    media_read_timeout: float = setting("EVENTS_MEDIA_READ_TIMEOUT", 30.0, minimum=0.1)
    photo_max_bytes: int = setting("EVENTS_PHOTO_MAX_BYTES", 10 * MIB, minimum=1)
    # The largest team any event may ask for, and the largest capacity.
    max_team_size: int = setting("EVENTS_MAX_TEAM_SIZE", 100, minimum=1)
    max_capacity: int = setting("EVENTS_MAX_CAPACITY", 1_000_000, minimum=1)

    def flask_config(self) -> dict[str, Any]:
        # A photo and a logo in one form, and their framing.
        return {"MAX_CONTENT_LENGTH": 2 * self.photo_max_bytes + FORM_OVERHEAD}
