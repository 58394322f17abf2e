"""Uploads that are not images, too large, or malformed: refused, and nothing stored."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from tests.media_service.media_helpers import (
    NOT_AN_IMAGE,
    all_files_under,
    animated,
    created,
    decoded,
    image_bytes,
    image_rows,
    media_path,
    noise_png,
    png_declaring,
    send_image,
    usage_of,
)

PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<rect width="10" height="10" fill="red"/></svg>'
)


def truncated_jpeg() -> bytes:
    whole = noise_jpeg()
    return whole[: len(whole) * 2 // 3]


def noise_jpeg() -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(noise_png((120, 90)))).save(out, "JPEG", quality=95)
    return out.getvalue()


def broken_last_frame_gif() -> bytes:
    """An animation whose frames decode, except the last one's data is cut short."""
    whole = animated("GIF", 4, (60, 40))
    return whole[:-12] + b";"


NOT_IMAGES: dict[str, Callable[[], bytes]] = {
    "text named .jpg": lambda: b"hello, this is not a picture at all\n" * 20,
    "png header then garbage": lambda: image_bytes("PNG")[:16] + b"\x00garbage" * 100,
    "png with a broken crc": lambda: corrupt(image_bytes("PNG"), 40),
    "truncated jpeg": truncated_jpeg,
    "jpeg header then garbage": lambda: b"\xff\xd8\xff\xe0" + b"\x13" * 500,
    "svg": lambda: SVG,
    "pdf": lambda: PDF,
    "bmp": lambda: image_bytes("BMP"),
    "tiff": lambda: image_bytes("TIFF"),
    "ico": lambda: image_bytes("ICO", (32, 32)),
    "ppm": lambda: image_bytes("PPM"),
    "html": lambda: b"<html><script>alert(1)</script></html>",
    "animation with a broken frame": broken_last_frame_gif,
}


def corrupt(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1 :]


def gif_declaring(width: int, height: int) -> bytes:
    """A GIF header with this logical screen, and a 1x1 frame."""
    return (
        b"GIF89a" + width.to_bytes(2, "little") + height.to_bytes(2, "little")
        + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
        + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00" + b"\x02\x02D\x01\x00" + b";"
    )  # fmt: skip


@pytest.fixture
def nothing_stored(app: Flask, storage_dir: Path) -> Iterator[None]:
    """After the test: no file, no image row, no usage beyond what was there before."""
    files = all_files_under(storage_dir)
    rows = [row.id for row in image_rows(app)]
    usage = usage_of(app, "id-alice")
    yield
    assert all_files_under(storage_dir) == files
    assert [row.id for row in image_rows(app)] == rows
    assert usage_of(app, "id-alice") == usage


@pytest.mark.parametrize("name", list(NOT_IMAGES))
def test_anything_but_a_jpeg_png_gif_or_webp_is_422_and_nothing_is_stored(
    client: FlaskClient, alice: dict[str, str], nothing_stored: None, name: str
) -> None:
    response = send_image(client, alice, NOT_IMAGES[name](), filename="photo.jpg")
    assert response.status_code == 422, response.json
    assert response.json == {"error": NOT_AN_IMAGE, "code": "not_an_image"}


@pytest.mark.parametrize("name", ["text named .jpg", "bmp", "truncated jpeg"])
def test_a_replacement_that_is_not_an_image_keeps_the_old_picture(
    app: Flask, client: FlaskClient, alice: dict[str, str], storage_dir: Path, name: str
) -> None:
    body = created(client, alice)
    files = all_files_under(storage_dir)
    usage = usage_of(app, "id-alice")
    response = send_image(client, alice, NOT_IMAGES[name](), image_id=body["id"])
    assert response.status_code == 422
    assert response.json["error"] == NOT_AN_IMAGE
    assert all_files_under(storage_dir) == files
    assert usage_of(app, "id-alice") == usage
    assert client.get(media_path(body["url"])).status_code == 200


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_each_accepted_format_is_stored_in_that_format(
    client: FlaskClient, alice: dict[str, str], image_format: str, content_type: str
) -> None:
    body = created(client, alice, image_bytes(image_format, (33, 22)))
    assert body["content_type"] == content_type
    served = client.get(media_path(body["url"]))
    assert served.mimetype == content_type
    assert decoded(served.data).format == image_format
    assert decoded(served.data).size == (33, 22)


@pytest.mark.parametrize(
    ("image_format", "mode"),
    [("PNG", "1"), ("PNG", "LA"), ("PNG", "P"), ("PNG", "RGBA"), ("PNG", "I;16"),
     ("JPEG", "L"), ("JPEG", "CMYK"), ("GIF", "L"), ("WEBP", "RGBA")],
)  # fmt: skip
def test_pictures_of_every_mode_are_stored_with_a_thumbnail(
    client: FlaskClient, alice: dict[str, str], image_format: str, mode: str
) -> None:
    out = io.BytesIO()
    Image.new(mode, (300, 200)).save(out, image_format)
    body = created(client, alice, out.getvalue())
    assert client.get(media_path(body["url"])).status_code == 200
    thumbnail = client.get(media_path(body["thumbnail_url"]))
    assert decoded(thumbnail.data).size == (256, 171)


def test_a_cameras_multi_picture_jpeg_is_stored_as_its_primary_jpeg(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    primary, secondary = Image.new("RGB", (80, 60), "red"), Image.new("RGB", (40, 30), "blue")
    out = io.BytesIO()
    primary.save(out, "MPO", save_all=True, append_images=[secondary])
    assert Image.open(io.BytesIO(out.getvalue())).format == "MPO"
    body = created(client, alice, out.getvalue())
    assert body["content_type"] == "image/jpeg" and (body["width"], body["height"]) == (80, 60)
    stored = decoded(client.get(media_path(body["url"])).data)
    assert stored.format == "JPEG" and stored.size == (80, 60)
    assert stored.getpixel((40, 30))[0] > 200


def test_animations_stay_animated(client: FlaskClient, alice: dict[str, str]) -> None:
    for image_format in ("GIF", "WEBP", "PNG"):
        body = created(client, alice, animated(image_format, 5))
        stored = Image.open(io.BytesIO(client.get(media_path(body["url"])).data))
        assert stored.format == image_format
        assert stored.n_frames == 5, image_format
        thumbnail = decoded(client.get(media_path(body["thumbnail_url"])).data)
        assert getattr(thumbnail, "n_frames", 1) == 1


# Malformed requests


def test_a_missing_field_is_400(client: FlaskClient, alice: dict[str, str]) -> None:
    response = client.post("/images/", data={}, headers=alice, content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.json["code"] == "validation_error"
    assert set(response.json["errors"]) == {"image"}


def test_a_file_under_another_field_name_is_400(
    client: FlaskClient, alice: dict[str, str], nothing_stored: None
) -> None:
    response = send_image(client, alice, image_bytes(), field="picture")
    assert response.status_code == 400
    assert set(response.json["errors"]) == {"image"}


def test_the_field_as_plain_text_is_400(client: FlaskClient, alice: dict[str, str]) -> None:
    response = client.post(
        "/images/", data={"image": "not a file"}, headers=alice, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert set(response.json["errors"]) == {"image"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"image": "aGVsbG8="}', "application/json"),
        (b"image=hello", "application/x-www-form-urlencoded"),
        (b"\xff\xd8\xff raw bytes", "image/jpeg"),
        (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
        (b"", "multipart/form-data"),
    ],
)
def test_bodies_that_are_not_a_multipart_upload_are_400(
    client: FlaskClient, alice: dict[str, str], body: bytes, content_type: str
) -> None:
    response = client.post("/images/", data=body, headers=alice, content_type=content_type)
    assert response.status_code == 400
    assert response.json["code"] == "validation_error"


def test_an_empty_file_is_400(
    client: FlaskClient, alice: dict[str, str], nothing_stored: None
) -> None:
    response = send_image(client, alice, b"")
    assert response.status_code == 400
    assert response.json["code"] == "validation_error"
    assert set(response.json["errors"]) == {"image"}


def test_a_replacement_with_an_empty_file_is_400(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    body = created(client, alice)
    assert send_image(client, alice, b"", image_id=body["id"]).status_code == 400


# Sizes


def test_a_file_over_the_byte_limit_is_413(
    make_app: Callable[..., Flask], alice: dict[str, str], storage_dir: Path
) -> None:
    app = make_app(MEDIA_MAX_BYTES=4000)
    client = app.test_client()
    small = image_bytes("PNG", (10, 10))
    big = noise_png((40, 40))  # about 5 KB
    assert len(small) < 4000 < len(big) < 4000 + 64 * 1024
    response = send_image(client, alice, big)
    assert response.status_code == 413
    assert response.json["code"] == "payload_too_large"
    assert all_files_under(storage_dir) == []
    assert image_rows(app) == []
    assert send_image(client, alice, small).status_code == 201


def test_a_request_body_beyond_the_limit_is_413_before_it_is_read(
    make_app: Callable[..., Flask], alice: dict[str, str], storage_dir: Path
) -> None:
    app = make_app(MEDIA_MAX_BYTES=4000)
    client = app.test_client()
    huge = noise_png((200, 200))  # about 120 KB: over the limit and the form's room
    assert len(huge) > 4000 + 64 * 1024
    response = send_image(client, alice, huge)
    assert response.status_code == 413
    assert response.json["code"] == "payload_too_large"
    declared = client.post(
        "/images/",
        data=b"x" * 10,
        headers=alice,
        content_type="multipart/form-data; boundary=x",
        environ_overrides={"CONTENT_LENGTH": str(10**9)},  # a client announcing a gigabyte
    )
    assert declared.status_code == 413
    assert all_files_under(storage_dir) == []
    assert image_rows(app) == []


# Decompression bombs and animations


def pillow_allocations() -> int:
    """How many images Pillow's C allocator has made in this process (pixel buffers are
    allocated there, not through Python's allocator, so tracemalloc cannot see them)."""
    stats: dict[str, int] = Image.core.get_stats()  # type: ignore[attr-defined]
    return stats["new_count"]


def test_a_small_png_declaring_too_many_pixels_is_refused_before_decoding(
    app: Flask, client: FlaskClient, alice: dict[str, str], storage_dir: Path
) -> None:
    bomb = png_declaring(8000, 8000)  # 64 Mpx: over the 40 Mpx limit, under Pillow's own
    assert len(bomb) < 64 * 1024
    assert Image.open(io.BytesIO(bomb)).size == (8000, 8000)
    before = pillow_allocations()
    response = send_image(client, alice, bomb, filename="bomb.png")
    assert response.status_code == 422
    assert response.json["code"] == "image_too_large"
    assert "8000x8000" in response.json["error"]
    assert pillow_allocations() == before  # not one pixel buffer was made
    assert all_files_under(storage_dir) == [] and image_rows(app) == []
    # the same measure sees an upload that is decoded
    created(client, alice, image_bytes("PNG", (20, 20)))
    assert pillow_allocations() > before


def test_a_png_declaring_20000_by_20000_pixels_is_422(
    client: FlaskClient, alice: dict[str, str], nothing_stored: None
) -> None:
    bomb = png_declaring(20000, 20000)
    before = pillow_allocations()
    response = send_image(client, alice, bomb, filename="bomb.png")
    assert response.status_code == 422
    assert response.json["code"] == "image_too_large"
    assert pillow_allocations() == before


def test_the_pixel_limit_is_configurable(
    make_app: Callable[..., Flask], alice: dict[str, str]
) -> None:
    client = make_app(MEDIA_MAX_PIXELS=100 * 100).test_client()
    assert send_image(client, alice, image_bytes("PNG", (100, 100))).status_code == 201
    refused = send_image(client, alice, image_bytes("PNG", (101, 100)))
    assert refused.status_code == 422 and refused.json["code"] == "image_too_large"


def test_an_animation_with_too_many_frames_is_422(
    make_app: Callable[..., Flask], alice: dict[str, str], storage_dir: Path
) -> None:
    client = make_app(MEDIA_MAX_FRAMES=4).test_client()
    for image_format in ("GIF", "WEBP", "PNG"):
        assert send_image(client, alice, animated(image_format, 4)).status_code == 201
        files = all_files_under(storage_dir)
        refused = send_image(client, alice, animated(image_format, 5))
        assert refused.status_code == 422, image_format
        assert refused.json["code"] == "image_too_large"
        assert "5 frames" in refused.json["error"]
        assert all_files_under(storage_dir) == files


def test_every_frame_of_an_animation_counts_against_the_pixel_limit(
    make_app: Callable[..., Flask], alice: dict[str, str]
) -> None:
    client = make_app(MEDIA_MAX_PIXELS=40 * 30 * 10).test_client()
    assert send_image(client, alice, animated("GIF", 10, (40, 30))).status_code == 201
    refused = send_image(client, alice, animated("GIF", 11, (40, 30)))
    assert refused.status_code == 422 and refused.json["code"] == "image_too_large"


def test_a_gif_frame_enlarging_the_canvas_counts_against_the_pixel_limit(
    make_app: Callable[..., Flask], alice: dict[str, str], nothing_stored: None
) -> None:
    client = make_app(MEDIA_MAX_PIXELS=100 * 100).test_client()
    screen = gif_declaring(10, 10)
    # a second frame at 0,0 of 2000x2000 (its data is tiny; the canvas grows to fit it)
    second = b",\x00\x00\x00\x00\xd0\x07\xd0\x07\x00" + b"\x02\x02D\x01\x00"
    enlarging = screen[:-1] + second + b";"
    assert Image.open(io.BytesIO(enlarging)).size == (10, 10)
    response = send_image(client, alice, enlarging, filename="grow.gif")
    assert response.status_code == 422
    # refused for its size, before its (too short) data was decoded
    assert response.json["code"] == "image_too_large"
    assert "2000x2000" in response.json["error"]
