"""Profile pictures: checking an upload is an image, and where its bytes are kept.

Binary storage belongs to media_service. Until it serves profile pictures, they are kept
through `PictureStore`, the small interface media_service is to implement, by
`FileSystemPictureStore`: files under `PROFILE_PICTURE_DIR` (`var/media/profile/`) with
random, unguessable names, served by auth_service at `/profile-pictures/<name>`.

An upload is opened with Pillow, its format, size and frame count checked before
anything is decoded (decompression bombs), verified, then re-encoded: the stored file
holds pixels only, no metadata (camera, GPS) and nothing smuggled after the image data.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import Flask, current_app
from PIL import Image, UnidentifiedImageError

from auth_service.errors import ImageTooLarge, NotAnImage

PICTURE_STORE = "auth.picture_store"
URL_PREFIX = "/profile-pictures/"
FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32}\.(jpg|png|gif|webp)$")


class PictureStore(Protocol):
    """Where profile pictures live; media_service is to provide one over HTTP."""

    def save(self, owner: str, stream: BinaryIO, content_type: str) -> str:
        """Keep the picture of user `owner` (public id); return its public URL."""
        ...

    def delete(self, url: str) -> None:
        """Forget a picture this store returned; URLs it did not make are ignored."""
        ...


class FileSystemPictureStore:
    def __init__(self, directory: Path, url_prefix: str = URL_PREFIX) -> None:
        self.directory = Path(directory)
        self.url_prefix = url_prefix

    def save(self, owner: str, stream: BinaryIO, content_type: str) -> str:
        extension = next((e for e, t in CONTENT_TYPES.items() if t == content_type), None)
        if extension is None:
            raise ValueError(f"unsupported content type {content_type!r}")
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{secrets.token_urlsafe(24)}.{extension}"  # 32 characters, 192 random bits
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                while chunk := stream.read(64 * 1024):
                    handle.write(chunk)
            os.chmod(temporary, 0o644)
            os.replace(temporary, self.directory / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return self.url_prefix + name

    def delete(self, url: str) -> None:
        if not url.startswith(self.url_prefix):
            return
        path = self.path_for(url[len(self.url_prefix) :])
        if path is not None:
            path.unlink(missing_ok=True)

    def path_for(self, name: str) -> Path | None:
        """The file of a picture name, or None for a name this store cannot have made."""
        if not NAME_PATTERN.match(name):
            return None
        return self.directory / name


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


def content_type_of(name: str) -> str:
    """The content type of a stored picture, from its name."""
    return CONTENT_TYPES[name.rsplit(".", 1)[-1]]


def init_pictures(app: Flask) -> None:
    app.extensions[PICTURE_STORE] = FileSystemPictureStore(Path(app.config["PROFILE_PICTURE_DIR"]))


def picture_store() -> PictureStore:
    return current_app.extensions[PICTURE_STORE]  # type: ignore[no-any-return]
