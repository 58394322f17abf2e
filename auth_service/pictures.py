"""Profile pictures: checking an upload is an image, and keeping it in media_service.

An upload is opened with Pillow, its format, size and frame count checked before
anything is decoded (decompression bombs), verified, then re-encoded: the stored file
holds pixels only, no metadata (camera, GPS) and nothing smuggled after the image data.
A bad upload is refused here, without a call to media_service (which checks again).

The bytes belong to media_service: `MediaPictureStore` sends the checked picture to its
internal file store (`POST /internal/files`, owner = the user's public id, purpose
"profile-picture") with auth_service's own service token. media_service answers a public,
site-relative URL, `/media/files/<random>.<ext>`, which the user's `profilePicture` holds;
`DELETE /internal/files/<key>` removes a picture again.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import requests
from flask import Flask, current_app
from PIL import Image, UnidentifiedImageError

from auth_service.errors import ImageTooLarge, MediaUnavailable, NotAnImage, PictureTooLarge
from auth_service.tokens import OwnServiceToken
from servicekit.http import DEFAULT_TIMEOUT, ServiceClient

log = logging.getLogger(__name__)

PICTURE_STORE = "auth.picture_store"
FILES_ROUTE = "/internal/files"
PURPOSE = "profile-picture"
MEDIA_URL_PREFIX = "/media/"
# The keys media_service gives the files of other services: "files/" and 192 random bits.
FILE_KEY_PATTERN = re.compile(r"^files/[A-Za-z0-9_-]{32}\.(jpg|png|gif|webp)$")
FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}
EXTENSIONS = {content_type: extension for extension, content_type in CONTENT_TYPES.items()}


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    content_type: str


def checked_image(stream: BinaryIO, max_pixels: int, max_frames: int) -> CheckedImage:
    """The upload re-encoded, if it is a JPEG, PNG, GIF or WebP image within the limits."""
    try:
        with Image.open(stream) as probe:
            image_format = probe.format or ""
            if image_format not in FORMATS:
                raise NotAnImage()
            width, height = probe.size
            if width * height > max_pixels:
                raise ImageTooLarge(f"at most {max_pixels} pixels")
            if getattr(probe, "n_frames", 1) > max_frames:
                raise ImageTooLarge(f"at most {max_frames} frames")
            probe.verify()
        stream.seek(0)
        with Image.open(stream) as image:
            content_type = CONTENT_TYPES[FORMATS[image_format]]
            return CheckedImage(_reencoded(image, image_format), content_type)
    except Image.DecompressionBombError as exc:  # Pillow's own, far higher, limit
        raise ImageTooLarge(f"at most {max_pixels} pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise NotAnImage() from exc
    except (ValueError, TypeError, EOFError) as exc:  # Pillow's reaction to some broken files
        raise NotAnImage() from exc


def _reencoded(image: Image.Image, image_format: str) -> bytes:
    animated = bool(getattr(image, "is_animated", False))
    options: dict[str, object] = {"format": image_format}
    if image_format == "JPEG":
        options["quality"] = 90
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
    if image_format == "WEBP":
        options["quality"] = 90
    if animated:
        options["save_all"] = True
    out = io.BytesIO()
    image.save(out, **options)
    return out.getvalue()


class PictureStore(Protocol):
    """Where profile pictures live."""

    def save(self, owner: str, stream: BinaryIO, content_type: str) -> str:
        """Keep the picture of user `owner` (public id); return its public URL."""
        ...

    def delete(self, url: str) -> None:
        """Forget a picture this store returned; URLs it did not make are ignored.

        Never raises: a picture that cannot be deleted now is logged."""
        ...


def stored_key(url: str | None) -> str | None:
    """media_service's key of a picture URL the store hands out; None for any other URL."""
    if not url or not url.startswith(MEDIA_URL_PREFIX):
        return None
    key = url[len(MEDIA_URL_PREFIX) :]
    return key if FILE_KEY_PATTERN.match(key) else None


class MediaPictureStore:
    """Pictures kept by media_service's internal file store."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client  # attaches the service token

    def save(self, owner: str, stream: BinaryIO, content_type: str) -> str:
        extension = EXTENSIONS.get(content_type)
        if extension is None:
            raise ValueError(f"unsupported content type {content_type!r}")
        try:
            response = self.client.post(
                FILES_ROUTE,
                data={"owner": owner, "purpose": PURPOSE},
                files={"file": (f"picture.{extension}", stream, content_type)},
            )
        except requests.RequestException as exc:
            log.warning("media_service unreachable", extra={"error": _describe(exc)})
            raise MediaUnavailable() from exc
        return _stored_url(response)

    def delete(self, url: str) -> None:
        key = stored_key(url)
        if key is None:
            return
        try:
            response = self.client.delete(f"{FILES_ROUTE}/{key}")
        except requests.RequestException as exc:
            log.warning("picture not deleted", extra={"key": key, "error": _describe(exc)})
            return
        if response.status_code not in (204, 404):  # 404: gone already
            log.warning("picture not deleted", extra={"key": key, "status": response.status_code})


def _stored_url(response: requests.Response) -> str:
    """The URL of media_service's 201 answer, or the refusal its answer means."""
    status = response.status_code
    body = _json_object(response)
    if status == 201:
        url = body.get("url")
        if isinstance(url, str) and stored_key(url) is not None:
            return url
    elif status == 413:
        raise PictureTooLarge(None)
    elif status == 422 and body.get("code") == "not_an_image":
        raise NotAnImage()
    elif status == 422 and body.get("code") == "image_too_large":
        reason = str(body.get("error", "")).removeprefix("image too large: ")
        raise ImageTooLarge(reason or "over media_service's limits")
    if status >= 500:
        log.warning("media_service failed", extra={"status": status})
    else:  # the services disagree (a token refused, say): a fault to fix, not the client's
        log.error("unexpected answer from media_service", extra={"status": status})
    raise MediaUnavailable()


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def init_pictures(app: Flask) -> None:
    timeout = (DEFAULT_TIMEOUT[0], float(app.config["MEDIA_READ_TIMEOUT"]))
    client = ServiceClient(
        "media",
        base_url=app.config["MEDIA_SERVICE_URL"],
        tokens=OwnServiceToken(app.config["SERVICE_NAME"]),
        timeout=timeout,
    )
    app.extensions[PICTURE_STORE] = MediaPictureStore(client)


def picture_store() -> PictureStore:
    return current_app.extensions[PICTURE_STORE]  # type: ignore[no-any-return]
