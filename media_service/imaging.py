"""Checking that an upload is an image, and re-encoding it clean.

An upload is opened with Pillow and its format, pixel count and frame count checked from
the header, before any pixel is decoded (decompression bombs). It is then verified,
decoded once, turned upright by its EXIF orientation, and re-encoded in its own format
with only what the picture needs (transparency, animation timing, colour profile): no
EXIF (camera, GPS), no XMP, no comments or text chunks, nothing after the image data.
A downscaled thumbnail is made from the same decoded pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow format -> (file extension, content type) of what we accept and store.
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "GIF": ("gif", "image/gif"),
    "WEBP": ("webp", "image/webp"),
}
CONTENT_TYPES = {extension: content_type for extension, content_type in FORMATS.values()}
# What of `Image.info` a re-encoded picture keeps: how it looks and moves, nothing else.
KEPT_INFO = ("transparency", "duration", "loop", "background", "disposal", "blend")
THUMBNAIL_FORMAT = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "PNG", "WEBP": "WEBP"}


class NotAnImage(Exception):
    """The bytes do not decode as a JPEG, PNG, GIF or WebP image."""


class ImageTooLarge(Exception):
    """More pixels or frames than allowed (a decompression bomb, or just too big)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    max_pixels: int
    max_frames: int
    thumbnail_size: int


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


def prepare(stream: BinaryIO, limits: Limits) -> Prepared:
    """Check the upload and decode it; raise NotAnImage or ImageTooLarge."""
    try:
        image_format = _checked_header(stream, limits)
        stream.seek(0)
        image = Image.open(stream)
        image.load()
        return _prepared(image, image_format, limits)
    except Image.DecompressionBombError as exc:  # Pillow's own, far higher, limit
        raise ImageTooLarge(f"at most {limits.max_pixels} pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError, EOFError) as exc:
        raise NotAnImage() from exc  # Pillow's reactions to broken or foreign files


def _checked_header(stream: BinaryIO, limits: Limits) -> str:
    """The format, once the header says the image is within the limits and it verifies."""
    with Image.open(stream) as probe:
        image_format = probe.format or ""
        if image_format not in FORMATS:
            raise NotAnImage()
        width, height = probe.size
        if width < 1 or height < 1:
            raise NotAnImage()
        if width * height > limits.max_pixels:
            raise ImageTooLarge(f"{width}x{height} is over {limits.max_pixels} pixels")
        frames = getattr(probe, "n_frames", 1)
        if frames > limits.max_frames:
            raise ImageTooLarge(f"{frames} frames is over {limits.max_frames}")
        probe.verify()
    return image_format


def _prepared(image: Image.Image, image_format: str, limits: Limits) -> Prepared:
    animated = bool(getattr(image, "is_animated", False))
    if not animated:
        ImageOps.exif_transpose(image, in_place=True)
    kept = {key: image.info[key] for key in KEPT_INFO if key in image.info}
    icc_profile = image.info.get("icc_profile")
    image.info = kept
    thumbnail_format = THUMBNAIL_FORMAT[image_format]
    picture = Picture(image_format, image.width, image.height, thumbnail_format)

    def write_image(target: BinaryIO) -> None:
        _encode(image, image_format, target, animated=animated, icc_profile=icc_profile)

    def write_thumbnail(target: BinaryIO) -> None:
        if animated:
            image.seek(0)
        small = _downscaled(_still(image), limits.thumbnail_size)
        _encode(small, thumbnail_format, target, animated=False, icc_profile=icc_profile)

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
    options: dict[str, object] = {"format": image_format}
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
