"""What is served is the picture only: metadata (EXIF, GPS, XMP, comments, text) is gone,
the picture is upright, and its colour profile is kept."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from tests.media_service.media_helpers import (
    created,
    decoded,
    jpeg_segments,
    media_path,
    png_chunk_types,
    riff_chunk_types,
)

MAKE = "SecretCam"
MODEL = "Model X-Secret"
COMMENT = b"SECRET COMMENT"
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">SECRET-XMP</x:xmpmeta>'
SECRETS = (MAKE.encode(), MODEL.encode(), COMMENT, b"SECRET-XMP", b"SECRET-TEXT")
APP1, COM = 0xE1, 0xFE
RED, BLUE = (255, 0, 0), (0, 0, 255)


def camera_exif(orientation: int = 1) -> Image.Exif:
    """A camera's EXIF: make, model, orientation and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = MAKE
    exif[ExifTags.Base.Model] = MODEL
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 30.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 17.0, 40.0)
    return exif


def marked_picture(size: tuple[int, int] = (60, 40)) -> Image.Image:
    """Blue, with a red block in the top-left corner of its stored pixels."""
    picture = Image.new("RGB", size, BLUE)
    picture.paste(RED, (0, 0, 15, 15))
    return picture


def camera_jpeg(orientation: int = 6) -> bytes:
    out = io.BytesIO()
    marked_picture().save(
        out, "JPEG", quality=95, exif=camera_exif(orientation), comment=COMMENT, xmp=XMP
    )
    data = out.getvalue()
    source = Image.open(io.BytesIO(data))
    # the upload really carries what must go
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert all(secret in data for secret in (MAKE.encode(), COMMENT, b"SECRET-XMP"))
    return data


def close_to(pixel: tuple[int, ...], color: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel[:3], color, strict=True))


def served(client: FlaskClient, url: str) -> bytes:
    response = client.get(media_path(url))
    assert response.status_code == 200
    return response.data


def test_a_camera_jpeg_is_served_without_exif_gps_xmp_or_comment(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    body = created(client, alice, camera_jpeg())
    for url in (body["url"], body["thumbnail_url"]):
        data = served(client, url)
        markers = [marker for marker, _ in jpeg_segments(data)]
        assert APP1 not in markers  # neither EXIF nor XMP
        assert COM not in markers
        assert not any(secret in data for secret in SECRETS)
        picture = decoded(data)
        assert dict(picture.getexif()) == {}
        assert not {"exif", "xmp", "comment"} & set(picture.info)


def test_a_camera_jpeg_is_turned_upright_by_its_orientation(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    body = created(client, alice, camera_jpeg(orientation=6))
    assert (body["width"], body["height"]) == (40, 60)
    picture = decoded(served(client, body["url"])).convert("RGB")
    assert picture.size == (40, 60)
    # orientation 6: the stored top-left corner is shown at the top right
    assert close_to(picture.getpixel((picture.width - 4, 4)), RED)
    assert close_to(picture.getpixel((4, 4)), BLUE)
    assert close_to(picture.getpixel((picture.width - 4, picture.height - 4)), BLUE)
    thumbnail = decoded(served(client, body["thumbnail_url"])).convert("RGB")
    assert thumbnail.size == (40, 60)
    assert close_to(thumbnail.getpixel((thumbnail.width - 4, 4)), RED)


@pytest.mark.parametrize(
    ("orientation", "size", "red_corner"),
    [(1, (60, 40), "top-left"), (3, (60, 40), "bottom-right"), (8, (40, 60), "bottom-left")],
)
def test_other_orientations(
    client: FlaskClient,
    alice: dict[str, str],
    orientation: int,
    size: tuple[int, int],
    red_corner: str,
) -> None:
    body = created(client, alice, camera_jpeg(orientation))
    picture = decoded(served(client, body["url"])).convert("RGB")
    assert picture.size == size
    corners = {
        "top-left": (4, 4),
        "top-right": (size[0] - 4, 4),
        "bottom-left": (4, size[1] - 4),
        "bottom-right": (size[0] - 4, size[1] - 4),
    }
    for corner, point in corners.items():
        expected = RED if corner == red_corner else BLUE
        assert close_to(picture.getpixel(point), expected), corner


def test_png_text_and_exif_chunks_are_dropped(client: FlaskClient, alice: dict[str, str]) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "SECRET-TEXT")
    info.add_text("Author", "SECRET-TEXT", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode(), zip=False)
    out = io.BytesIO()
    marked_picture().save(out, "PNG", pnginfo=info, exif=camera_exif(1))
    source = out.getvalue()
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf"} <= set(png_chunk_types(source))
    body = created(client, alice, source)
    for url in (body["url"], body["thumbnail_url"]):
        data = served(client, url)
        assert set(png_chunk_types(data)) <= {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"iCCP"}
        assert not any(secret in data for secret in SECRETS)


def test_a_png_with_orientation_is_turned_upright(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    out = io.BytesIO()
    marked_picture().save(out, "PNG", exif=camera_exif(6))
    body = created(client, alice, out.getvalue())
    picture = decoded(served(client, body["url"])).convert("RGB")
    assert picture.size == (40, 60)
    assert picture.getpixel((picture.width - 4, 4)) == RED


def test_webp_exif_and_xmp_are_dropped(client: FlaskClient, alice: dict[str, str]) -> None:
    out = io.BytesIO()
    marked_picture().save(out, "WEBP", exif=camera_exif(1), xmp=XMP, quality=95)
    source = out.getvalue()
    assert {b"EXIF", b"XMP "} <= set(riff_chunk_types(source))
    body = created(client, alice, source)
    for url in (body["url"], body["thumbnail_url"]):
        data = served(client, url)
        assert not {b"EXIF", b"XMP "} & set(riff_chunk_types(data))
        assert not any(secret in data for secret in SECRETS)


def test_animated_webp_metadata_is_dropped(client: FlaskClient, alice: dict[str, str]) -> None:
    frames = [Image.new("RGB", (30, 20), color) for color in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(
        out, "WEBP", save_all=True, append_images=frames[1:], exif=camera_exif(1), xmp=XMP
    )
    assert {b"EXIF", b"XMP "} <= set(riff_chunk_types(out.getvalue()))
    body = created(client, alice, out.getvalue())
    data = served(client, body["url"])
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert not {b"EXIF", b"XMP "} & set(riff_chunk_types(data))


@pytest.mark.parametrize("frames", [1, 3])
def test_gif_comments_are_dropped(client: FlaskClient, alice: dict[str, str], frames: int) -> None:
    colors = ("red", "green", "blue")
    pictures = [Image.new("RGB", (30, 20), colors[number]) for number in range(frames)]
    out = io.BytesIO()
    pictures[0].save(out, "GIF", save_all=True, append_images=pictures[1:], comment=COMMENT)
    source = out.getvalue()
    assert getattr(Image.open(io.BytesIO(source)), "n_frames", 1) == frames
    assert COMMENT in source and b"\x21\xfe" in source  # a comment extension
    body = created(client, alice, source)
    data = served(client, body["url"])
    assert COMMENT not in data
    picture = Image.open(io.BytesIO(data))
    assert getattr(picture, "n_frames", 1) == frames
    assert "comment" not in picture.info
    for frame in range(frames):
        picture.seek(frame)
        assert "comment" not in picture.info


def test_animated_png_text_is_dropped(client: FlaskClient, alice: dict[str, str]) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "SECRET-TEXT")
    frames = [Image.new("RGB", (30, 20), color) for color in ("red", "green")]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:], pnginfo=info)
    body = created(client, alice, out.getvalue())
    data = served(client, body["url"])
    assert b"tEXt" not in png_chunk_types(data)
    assert Image.open(io.BytesIO(data)).n_frames == 2


def test_data_after_the_image_is_dropped(client: FlaskClient, alice: dict[str, str]) -> None:
    out = io.BytesIO()
    marked_picture().save(out, "PNG")
    polyglot = out.getvalue() + b"<script>alert('SECRET-TEXT')</script>"
    body = created(client, alice, polyglot)
    assert b"SECRET-TEXT" not in served(client, body["url"])


def srgb_profile() -> bytes:
    profile: bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return profile


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_the_colour_profile_is_kept(
    client: FlaskClient, alice: dict[str, str], image_format: str
) -> None:
    profile = srgb_profile()
    out = io.BytesIO()
    marked_picture().save(out, image_format, icc_profile=profile, exif=camera_exif(1))
    body = created(client, alice, out.getvalue())
    for url in (body["url"], body["thumbnail_url"]):
        picture = decoded(served(client, url))
        assert picture.info.get("icc_profile") == profile
        assert dict(picture.getexif()) == {}


def test_a_cmyk_profile_does_not_label_the_rgb_thumbnail(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    cmyk_profile = b"a CMYK profile's bytes (opaque to the service)" * 10
    out = io.BytesIO()
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(out, "JPEG", icc_profile=cmyk_profile)
    body = created(client, alice, out.getvalue())
    image = decoded(served(client, body["url"]))
    assert image.mode == "CMYK" and image.info.get("icc_profile") == cmyk_profile
    thumbnail = decoded(served(client, body["thumbnail_url"]))
    assert thumbnail.mode == "RGB" and "icc_profile" not in thumbnail.info
