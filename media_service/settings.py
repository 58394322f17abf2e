"""media_service's settings (servicekit.settings loads and checks them at start)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from media_service.origins import (
    AllowedHosts,
    allowed_hosts_problem,
    parse_public_url,
    public_url_problem,
)
from servicekit.config import var_dir
from servicekit.settings import setting

MIB = 1024 * 1024
# Room for the multipart framing and form fields around the file itself.
FORM_OVERHEAD = 64 * 1024
# Without MEDIA_PUBLIC_URL, URLs name the host the client used if it is one of these: a
# local run works as it is, and a public deployment must say where it is reached.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class MediaSettings:
    storage_dir: Path = setting("MEDIA_STORAGE_DIR", lambda: var_dir() / "media")
    # Without it the image API answers 503: its answers' URLs could not be signed.
    url_secret: str | None = setting("MEDIA_URL_SECRET", None, secret=True)
    url_ttl: int = setting("MEDIA_URL_TTL", 3600, minimum=1)
    url_window: int = setting("MEDIA_URL_WINDOW", 600, minimum=1)
    # Where clients reach the suite; when set, the request's host is never used.
    public_url: str | None = setting("MEDIA_PUBLIC_URL", None, check=public_url_problem)
    allowed_hosts: tuple[str, ...] = setting(
        "MEDIA_ALLOWED_HOSTS", LOCAL_HOSTS, check=allowed_hosts_problem
    )
    max_bytes: int = setting("MEDIA_MAX_BYTES", 20 * MIB, minimum=1)
    max_pixels: int = setting("MEDIA_MAX_PIXELS", 40_000_000, minimum=1)
    max_frames: int = setting("MEDIA_MAX_FRAMES", 300, minimum=1)
    thumbnail_size: int = setting("MEDIA_THUMBNAIL_SIZE", 256, minimum=1)
    quota_bytes: int = setting("MEDIA_QUOTA_BYTES", 500 * MIB, minimum=1)
    quota_images: int = setting("MEDIA_QUOTA_IMAGES", 1000, minimum=1)

    @cached_property
    def public_base(self) -> str | None:
        """MEDIA_PUBLIC_URL as the start of every URL (no final "/"), or None."""
        return parse_public_url(self.public_url) if self.public_url else None

    @cached_property
    def host_allow_list(self) -> AllowedHosts:
        return AllowedHosts.parse(self.allowed_hosts)

    def flask_config(self) -> dict[str, Any]:
        # A body beyond the largest file and its form is refused before it is read (413).
        return {"MAX_CONTENT_LENGTH": self.max_bytes + FORM_OVERHEAD}
