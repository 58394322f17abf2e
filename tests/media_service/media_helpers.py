"""Helpers shared by media_service's tests (a module name no package shadows)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

URL_SECRET = "test-media-url-secret"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def image_bytes(
    image_format: str = "JPEG", size: tuple[int, int] = (64, 48), color: Any = "red", **options: Any
) -> bytes:
    """A real picture of the given format, encoded by Pillow."""
    mode = "RGBA" if image_format in ("PNG", "WEBP") and options.pop("alpha", False) else "RGB"
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, image_format, **options)
    return out.getvalue()


def multipart(field: str, data: bytes, filename: str = "picture.jpg") -> dict[str, Any]:
    """A form body for the Flask test client: one file under `field`."""
    return {field: (io.BytesIO(data), filename)}


def media_path(url: str) -> str:
    """The path and query of an absolute media URL, for the test client."""
    return url[url.index("/media/") :]
