"""Profile pictures: kept, checked and cleaned by media_service.

auth_service does not open uploads itself: the picture goes, as the client sent it, to
media_service's internal file store (servicekit.files) with auth_service's own service
token, owner = the user's public id, purpose "profile-picture". media_service decides
what the file is and stores it re-encoded; its refusals come back as auth's answers (not
an image, image too large, picture too large). The user's `profilePicture` holds the
public, site-relative URL it answers, `/media/files/<random>.<ext>`.
"""

from __future__ import annotations

from typing import BinaryIO, Protocol

from auth_service.settings import AuthSettings
from auth_service.tokens import OwnServiceToken
from servicekit.files import MediaFileStore, media_file_store
from servicekit.files import stored_key as stored_key

PURPOSE = "profile-picture"


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


class MediaPictureStore:
    """Profile pictures in media_service's file store."""

    def __init__(self, files: MediaFileStore) -> None:
        self.files = files

    def save(self, owner: str, stream: BinaryIO, size: int) -> str:
        return self.files.save(owner, PURPOSE, stream, size)

    def delete(self, url: str) -> None:
        self.files.delete(url)


def media_picture_store(settings: AuthSettings, tokens: OwnServiceToken) -> MediaPictureStore:
    """The store at `MEDIA_SERVICE_URL`, called with auth_service's own service token."""
    files = media_file_store(
        settings.media_service_url, tokens, settings.media_read_timeout, noun="picture"
    )
    return MediaPictureStore(files)
