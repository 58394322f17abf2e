"""Profile pictures: kept, checked and cleaned by media_service.

auth_service does not open uploads itself. `MediaPictureStore` streams the uploaded file,
as the client sent it, to media_service's internal file store (`POST /internal/files`,
owner = the user's public id, purpose "profile-picture") with auth_service's own service
token. media_service decides what the file is: it takes JPEG, PNG, GIF and WebP within
its pixel and frame limits, decodes every frame, and stores the picture re-encoded,
without metadata (EXIF, GPS, XMP, comments) or anything appended to the image. Its
refusals come back as auth's answers: not an image, image too large, file too large.

media_service answers a public, site-relative URL, `/media/files/<random>.<ext>`, which
the user's `profilePicture` holds; `DELETE /internal/files/<key>` removes a picture again.
"""

from __future__ import annotations

import logging
import re
from typing import Any, BinaryIO, Protocol

import requests

from auth_service.errors import ImageTooLarge, MediaUnavailable, NotAnImage, PictureTooLarge
from auth_service.settings import AuthSettings
from auth_service.tokens import OwnServiceToken
from servicekit.http import DEFAULT_TIMEOUT, MultipartBody, ServiceClient

log = logging.getLogger(__name__)

FILES_ROUTE = "/internal/files"
PURPOSE = "profile-picture"
MEDIA_URL_PREFIX = "/media/"
# The keys media_service gives the files of other services: "files/" and 192 random bits.
FILE_KEY_PATTERN = re.compile(r"^files/[A-Za-z0-9_-]{32}\.(jpg|png|gif|webp)$")
# What the client declared the file to be does not matter: media_service finds out.
# media_service decides what the file is from its bytes, not from a name or a type.
UPLOAD_FILENAME = "picture"


class PictureStore(Protocol):
    """Where profile pictures live."""

    def save(self, owner: str, stream: BinaryIO, size: int) -> str:
        """Keep the uploaded file (`size` bytes from the stream's start) as the picture of
        user `owner` (public id), if it is one; return its public URL."""
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

    def save(self, owner: str, stream: BinaryIO, size: int) -> str:
        stream.seek(0)
        body = MultipartBody(
            {"owner": owner, "purpose": PURPOSE}, "file", stream, size, filename=UPLOAD_FILENAME
        )
        try:
            response = self.client.post(
                FILES_ROUTE, data=body, headers={"Content-Type": body.content_type}
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


def media_picture_store(settings: AuthSettings, tokens: OwnServiceToken) -> MediaPictureStore:
    """The store at `MEDIA_SERVICE_URL`, called with auth_service's own service token."""
    client = ServiceClient(
        "media",
        base_url=settings.media_service_url,
        tokens=tokens,
        timeout=(DEFAULT_TIMEOUT[0], settings.media_read_timeout),
    )
    return MediaPictureStore(client)
