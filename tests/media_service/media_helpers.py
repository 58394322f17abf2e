"""Helpers shared by media_service's tests: pictures, uploads and what the store holds."""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from media_service.models import Image as ImageRow
from media_service.models import StoredFile, Usage, db

URL_SECRET = "test-media-url-secret"
NOT_AN_IMAGE = "Only image type data allowed"
STORAGE_FOLDERS = ("images", "thumbs", "files", ".incoming")


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


def noise_png(size: tuple[int, int], seed: int = 1) -> bytes:
    """A PNG of random pixels: it hardly compresses, so its size follows its pixel count."""
    pixels = random.Random(seed).randbytes(size[0] * size[1] * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(out, "PNG")
    return out.getvalue()


def animated(
    image_format: str, frames: int, size: tuple[int, int] = (32, 24), **options: Any
) -> bytes:
    """An animation of `frames` frames of different colours."""
    pictures = [Image.new("RGB", size, (n * 37 % 256, n * 91 % 256, 200)) for n in range(frames)]
    out = io.BytesIO()
    pictures[0].save(
        out, image_format, save_all=True, append_images=pictures[1:], duration=80, **options
    )
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of one colour: a few KB that decode to width x height pixels."""
    row = b"\x00" + bytes((width + 7) // 8)  # filter byte, then the row's bits
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


def png_chunk_types(data: bytes) -> list[bytes]:
    """The chunk types of a PNG, in order."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    types, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        types.append(data[offset + 4 : offset + 8])
        offset += 12 + length
    return types


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """The marker segments of a JPEG before its image data: [(marker, payload)]."""
    assert data[:2] == b"\xff\xd8"
    segments, offset = [], 2
    while offset < len(data):
        assert data[offset] == 0xFF, f"no marker at {offset}"
        marker = data[offset + 1]
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        segments.append((marker, data[offset + 4 : offset + 2 + length]))
        if marker == 0xDA:  # start of scan: the entropy-coded data follows
            break
        offset += 2 + length
    return segments


def riff_chunk_types(data: bytes) -> list[bytes]:
    """The chunk types of a WebP (RIFF) file, in order."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    types, offset = [], 12
    while offset + 8 <= len(data):
        kind = data[offset : offset + 4]
        (length,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        types.append(kind)
        offset += 8 + length + (length & 1)
    return types


def multipart(field: str, data: bytes, filename: str = "picture.jpg") -> dict[str, Any]:
    """A form body for the Flask test client: one file under `field`."""
    return {field: (io.BytesIO(data), filename)}


def send_image(
    client: FlaskClient,
    headers: dict[str, str],
    data: bytes,
    *,
    filename: str = "picture.jpg",
    image_id: int | str | None = None,
    field: str = "image",
    path: str | None = None,
) -> TestResponse:
    """POST a new image, or PUT a replacement when `image_id` is given (at `path`, when
    given, instead of the usual one)."""
    method = client.post if image_id is None else client.put
    if path is None:
        path = "/images/" if image_id is None else f"/images/{image_id}/"
    return method(
        path,
        data=multipart(field, data, filename),
        headers=headers,
        content_type="multipart/form-data",
    )


def created(
    client: FlaskClient, headers: dict[str, str], data: bytes | None = None
) -> dict[str, Any]:
    """The body of a successful upload."""
    response = send_image(client, headers, data if data is not None else image_bytes())
    assert response.status_code == 201, response.json
    body: dict[str, Any] = response.json
    return body


def media_path(url: str) -> str:
    """The path and query of an absolute media URL, for the test client."""
    return url[url.index("/media/") :]


def key_of(url: str) -> str:
    """The storage key in a media URL: `images/<random>.jpg`."""
    return media_path(url).split("?", 1)[0].removeprefix("/media/")


def stored_files(storage_dir: Path) -> dict[str, list[str]]:
    """The files in each folder of the storage directory."""
    found: dict[str, list[str]] = {}
    for folder in STORAGE_FOLDERS:
        path = storage_dir / folder
        found[folder] = sorted(os.listdir(path)) if path.is_dir() else []
    return found


def all_files_under(root: Path) -> list[str]:
    """Every file below `root`, relative paths."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def usage_of(app: Flask, owner: str) -> tuple[int, int] | None:
    """(bytes, images) of an owner's usage row, None when there is none."""
    with app.app_context():
        row = db.session.get(Usage, owner)
        return None if row is None else (row.bytes, row.images)


def image_rows(app: Flask, owner: str | None = None) -> list[ImageRow]:
    with app.app_context():
        query = select(ImageRow).order_by(ImageRow.id)
        if owner is not None:
            query = query.where(ImageRow.owner == owner)
        rows = list(db.session.scalars(query))
        db.session.expunge_all()
        return rows


def stored_file_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(StoredFile)) or 0


def decoded(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture
