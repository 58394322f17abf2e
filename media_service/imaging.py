"""Checking that an upload is an image, and re-encoding it clean.

An upload is opened with Pillow and its format, pixel count and frame count checked from
the header, before any pixel is decoded (decompression bombs): `max_pixels` bounds what
one upload decodes to, every frame of an animation counted. It is then verified, every
frame decoded once (so a broken frame is refused here, not half-way through a write),
turned upright by its EXIF orientation, and re-encoded in its own format with only what
the picture needs (transparency, animation timing, colour profile): no EXIF (camera,
GPS), no XMP, no comments or text chunks, nothing after the image data. A downscaled
thumbnail is made from the same decoded pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from PIL import Image, ImageOps

from media_service.settings import MediaSettings
from servicekit.errors import DomainError

log = logging.getLogger(__name__)

# Pillow format -> (file extension, content type) of what we accept and store.
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "GIF": ("gif", "image/gif"),
    "WEBP": ("webp", "image/webp"),
}
CONTENT_TYPES = {extension: content_type for extension, content_type in FORMATS.values()}
# A camera's multi-picture JPEG (MPO) is a JPEG: its primary picture is kept, as a JPEG.
STORED_AS = {"MPO": "JPEG"}
ANIMATED_FORMATS = ("GIF", "PNG", "WEBP")
# What of `Image.info` a re-encoded picture keeps: how it looks and moves, nothing else.
KEPT_INFO = ("transparency", "duration", "loop", "background", "disposal", "blend")
THUMBNAIL_FORMAT = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "PNG", "WEBP": "WEBP"}


class NotAnImage(DomainError):
    """The bytes do not decode as a JPEG, PNG, GIF or WebP image."""

    status, code, message = 422, "not_an_image", "Only image type data allowed"


class ImageTooLarge(DomainError):
    """More pixels or frames than allowed (a decompression bomb, or just too big)."""

    status, code = 422, "image_too_large"

    def __init__(self, reason: str) -> None:
        super().__init__(f"image too large: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Picture:
    """What was written for one upload: the clean image and its thumbnail."""

    image_format: str
    width: int
    height: int
    thumbnail_format: str

    @property
    def extension(self) -> str:
        return FORMATS[self.image_format][0]

    @property
    def content_type(self) -> str:
        return FORMATS[self.image_format][1]

    @property
    def thumbnail_extension(self) -> str:
        return FORMATS[self.thumbnail_format][0]


Writer = Callable[[BinaryIO], None]


@dataclass(frozen=True)
class Prepared:
    """A checked upload, ready to be written: `write_image` and `write_thumbnail` each
    encode into a file the caller opens (so nothing large is held in memory twice)."""

    picture: Picture
    write_image: Writer
    write_thumbnail: Writer


def prepare(stream: BinaryIO, limits: MediaSettings) -> Prepared:
    """Check the upload and decode it; raise NotAnImage or ImageTooLarge."""
    with _pillow_errors(limits):
        image_format, frames = _checked_header(stream, limits)
        stream.seek(0)
        image = Image.open(stream)
        _decode(image, frames, limits)
        return _prepared(image, image_format, frames > 1, limits)


@contextmanager
def _pillow_errors(limits: MediaSettings) -> Iterator[None]:
    """Pillow's reactions to broken or foreign files as NotAnImage (they are not a fixed
    set of exception types); failures of the machine itself pass through."""
    try:
        yield
    except (NotAnImage, ImageTooLarge, MemoryError):
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own limit, on any allocation
        raise ImageTooLarge(f"at most {limits.max_pixels} pixels") from exc
    except OSError as exc:
        if exc.errno is not None:  # the disk or the upload's temporary file, not the picture
            raise
        log.info("refused an upload Pillow cannot read: %s", exc)
        raise NotAnImage() from exc
    except Exception as exc:
        log.info("refused an upload Pillow cannot read: %r", exc)
        raise NotAnImage() from exc


def _checked_header(stream: BinaryIO, limits: MediaSettings) -> tuple[str, int]:
    """The format the picture is stored as and its frame count, once the header says the
    image is within the limits and it verifies."""
    with Image.open(stream) as probe:
        image_format = STORED_AS.get(probe.format or "", probe.format or "")
        if image_format not in FORMATS:
            raise NotAnImage()
        width, height = probe.size
        if width < 1 or height < 1:
            raise NotAnImage()
        _check_pixels(width, height, 1, limits)
        frames = 1
        if image_format in ANIMATED_FORMATS and getattr(probe, "is_animated", False):
            frames = int(getattr(probe, "n_frames", 1))
        if frames > limits.max_frames:
            raise ImageTooLarge(f"{frames} frames is over {limits.max_frames}")
        _check_pixels(width, height, frames, limits)
        probe.verify()
    return image_format, frames


def _check_pixels(width: int, height: int, frames: int, limits: MediaSettings) -> None:
    if width * height * frames <= limits.max_pixels:
        return
    if frames == 1:
        raise ImageTooLarge(f"{width}x{height} is over {limits.max_pixels} pixels")
    raise ImageTooLarge(
        f"{frames} frames of {width}x{height} are over {limits.max_pixels} pixels in all"
    )


def _decode(image: Image.Image, frames: int, limits: MediaSettings) -> None:
    """Decode every frame once, each within the limits (a GIF frame may enlarge the
    canvas), and come back to the first."""
    for frame in range(frames):
        if frames > 1:
            image.seek(frame)
        _check_pixels(image.width, image.height, frames, limits)
        image.load()
    if frames > 1:
        image.seek(0)


def _prepared(
    image: Image.Image, image_format: str, animated: bool, limits: MediaSettings
) -> Prepared:
    if not animated:
        ImageOps.exif_transpose(image, in_place=True)
    kept: dict[str | tuple[int, int], Any] = {
        key: image.info[key] for key in KEPT_INFO if key in image.info
    }
    icc_profile = image.info.get("icc_profile")
    image.info = kept
    thumbnail_format = THUMBNAIL_FORMAT[image_format]
    picture = Picture(image_format, image.width, image.height, thumbnail_format)

    def write_image(target: BinaryIO) -> None:
        with _pillow_errors(limits):
            _encode(image, image_format, target, animated=animated, icc_profile=icc_profile)

    def write_thumbnail(target: BinaryIO) -> None:
        with _pillow_errors(limits):
            if animated:
                image.seek(0)
            small = _downscaled(_still(image), limits.thumbnail_size)
            same_colours = _colour_space(small.mode) == _colour_space(image.mode)
            profile = icc_profile if same_colours else None
            _encode(small, thumbnail_format, target, animated=False, icc_profile=profile)

    return Prepared(picture, write_image, write_thumbnail)


def _downscaled(image: Image.Image, size: int) -> Image.Image:
    """A new image fitting in size x size, aspect kept, never enlarged."""
    scale = min(1.0, size / max(image.width, image.height))
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _still(image: Image.Image) -> Image.Image:
    """A frame in a mode every thumbnail encoder takes, transparency kept."""
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    return image.convert("RGBA" if _has_alpha(image) else "RGB")


def _colour_space(mode: str) -> str:
    """A profile describes one colour space: a CMYK profile must not label RGB pixels."""
    if mode == "CMYK":
        return "CMYK"
    if mode in ("RGB", "RGBA", "RGBX", "P", "PA"):
        return "RGB"
    return "grey"


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _encode(
    image: Image.Image,
    image_format: str,
    target: BinaryIO,
    *,
    animated: bool,
    icc_profile: bytes | None,
) -> None:
    options: dict[str, Any] = {"format": image_format}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if image_format == "JPEG":
        options["quality"] = 90
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
    elif image_format == "WEBP":
        options["quality"] = 90
    elif image_format == "PNG":
        options["compress_level"] = 6
    if animated:
        options["save_all"] = True
    image.save(target, **options)
