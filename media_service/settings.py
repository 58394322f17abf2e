"""media_service's settings (servicekit.settings loads and checks them at start)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servicekit.config import var_dir
from servicekit.settings import setting

MIB = 1024 * 1024
# Room for the multipart framing and form fields around the file itself.
FORM_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class MediaSettings:
    storage_dir: Path = setting("MEDIA_STORAGE_DIR", lambda: var_dir() / "media")
    # Without it the image API answers 503: its answers' URLs could not be signed.
    url_secret: str | None = setting("MEDIA_URL_SECRET", None, secret=True)
    url_ttl: int = setting("MEDIA_URL_TTL", 3600, minimum=1)
    url_window: int = setting("MEDIA_URL_WINDOW", 600, minimum=1)
    public_url: str | None = setting("MEDIA_PUBLIC_URL", None)
    max_bytes: int = setting("MEDIA_MAX_BYTES", 20 * MIB, minimum=1)
    max_pixels: int = setting("MEDIA_MAX_PIXELS", 40_000_000, minimum=1)
    max_frames: int = setting("MEDIA_MAX_FRAMES", 300, minimum=1)
    thumbnail_size: int = setting("MEDIA_THUMBNAIL_SIZE", 256, minimum=1)
    quota_bytes: int = setting("MEDIA_QUOTA_BYTES", 500 * MIB, minimum=1)
    quota_images: int = setting("MEDIA_QUOTA_IMAGES", 1000, minimum=1)

    def flask_config(self) -> dict[str, Any]:
        # A body beyond the largest file and its form is refused before it is read (413).
        return {"MAX_CONTENT_LENGTH": self.max_bytes + FORM_OVERHEAD}
