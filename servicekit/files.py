"""media_service's internal file store, as the other services use it.

A service does not open uploads itself. `MediaFileStore.save` streams an uploaded file,
as the client sent it, to media_service (`POST /internal/files`: owner, purpose, the
file) with the calling service's token. media_service decides what the file is: it takes
JPEG, PNG, GIF and WebP within its pixel and frame limits, decodes every frame, and
stores the image re-encoded, without metadata or anything appended to it. Its refusals
come back as the refusals below (not an image, image too large, file too large); when it
cannot be reached or fails, `MediaUnavailable`.

media_service answers a public, site-relative URL, `/media/files/<random>.<ext>`, that
serves the image to anyone; `delete(url)` removes such a file again (only the calling
service's own files: media_service refuses any other).
"""

from __future__ import annotations

import logging
import re
from typing import Any, BinaryIO

import requests

from servicekit.errors import DomainError
from servicekit.http import DEFAULT_TIMEOUT, MultipartBody, ServiceClient, TokenSource

log = logging.getLogger(__name__)

FILES_ROUTE = "/internal/files"
MEDIA_URL_PREFIX = "/media/"
# The keys media_service gives the files of other services: "files/" and 192 random bits.
FILE_KEY_PATTERN = re.compile(r"^files/[A-Za-z0-9_-]{32}\.(jpg|png|gif|webp)$")
# media_service decides what the file is from its bytes, not from a name or a type.
UPLOAD_FILENAME = "upload"


class NotAnImage(DomainError):
    status, code, message = 422, "not_an_image", "Only image type data allowed"

    def body(self) -> dict[str, Any]:  # the fest document's body
        return {"error": self.detail}


class ImageTooLarge(DomainError):
    """More pixels or frames than media_service takes (`reason` is its own)."""

    status, code = 422, "image_too_large"

    def __init__(self, reason: str) -> None:
        super().__init__(f"image too large: {reason}")


class FileTooLarge(DomainError):
    """Over the caller's limit (`limit` bytes), or over media_service's (`limit` None).
    `noun` names the file in the message ("picture over 100 bytes")."""

    status, code = 413, "payload_too_large"

    def __init__(self, limit: int | None, noun: str = "file") -> None:
        super().__init__(f"{noun} over {limit} bytes" if limit is not None else f"{noun} too large")


class MediaUnavailable(DomainError):
    """media_service, which keeps the files, cannot be reached or failed."""

    status, code = 503, "service_unavailable"
    message = "the media service is unavailable; try again"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


def stored_key(url: str | None) -> str | None:
    """media_service's key of a URL the store hands out; None for any other URL."""
    if not url or not url.startswith(MEDIA_URL_PREFIX):
        return None
    key = url[len(MEDIA_URL_PREFIX) :]
    return key if FILE_KEY_PATTERN.match(key) else None


class MediaFileStore:
    """Files kept by media_service's internal file store, as one service."""

    def __init__(self, client: ServiceClient, *, noun: str = "file") -> None:
        self.client = client  # attaches the service token
        self.noun = noun  # how refusals name the file: "picture too large"

    def save(self, owner: str, purpose: str, stream: BinaryIO, size: int) -> str:
        """Keep the file (`size` bytes from the stream's start) for `owner` (opaque to
        media_service) and `purpose` (1 to 32 of a-z, 0-9, '-'), if it is an image;
        return its public URL."""
        stream.seek(0)
        body = MultipartBody(
            {"owner": owner, "purpose": purpose}, "file", stream, size, filename=UPLOAD_FILENAME
        )
        try:
            response = self.client.post(
                FILES_ROUTE, data=body, headers={"Content-Type": body.content_type}
            )
        except requests.RequestException as exc:
            log.warning("media_service unreachable", extra={"error": _describe(exc)})
            raise MediaUnavailable() from exc
        return self._stored_url(response)

    def delete(self, url: str) -> None:
        """Forget a file this store returned; URLs it did not make are ignored.

        Never raises: a file that cannot be deleted now is logged."""
        key = stored_key(url)
        if key is None:
            return
        try:
            response = self.client.delete(f"{FILES_ROUTE}/{key}")
        except requests.RequestException as exc:
            log.warning("file not deleted", extra={"key": key, "error": _describe(exc)})
            return
        if response.status_code not in (204, 404):  # 404: gone already
            log.warning("file not deleted", extra={"key": key, "status": response.status_code})

    def _stored_url(self, response: requests.Response) -> str:
        """The URL of media_service's 201 answer, or the refusal its answer means."""
        status = response.status_code
        body = _json_object(response)
        if status == 201:
            url = body.get("url")
            if isinstance(url, str) and stored_key(url) is not None:
                return url
        elif status == 413:
            raise FileTooLarge(None, self.noun)
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


def media_file_store(
    base_url: str, tokens: TokenSource, read_timeout: float, *, noun: str = "file"
) -> MediaFileStore:
    """The store at `base_url` (media_service), called with the tokens of `tokens`."""
    client = ServiceClient(
        "media", base_url=base_url, tokens=tokens, timeout=(DEFAULT_TIMEOUT[0], read_timeout)
    )
    return MediaFileStore(client, noun=noun)


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
