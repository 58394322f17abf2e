"""Profile pictures: uploads (checked, re-encoded, stored, served) and linked-account pictures."""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from auth_helpers import bearer, image_bytes, stored_user
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from auth_service.models import LinkedIdentity, db
from auth_service.service import user_by_subject

AddUser = Callable[..., str]
TokenFor = Callable[..., str]
NOT_AN_IMAGE = {"error": "Only image type data allowed"}


def upload(
    client: FlaskClient,
    username: str,
    token: str | None,
    data: bytes,
    field: str = "profilePicture",
    filename: str = "me.png",
) -> Any:
    headers = bearer(token) if token else {}
    return client.put(
        f"/users/{username}/pictureupload",
        data={field: (io.BytesIO(data), filename)},
        headers=headers,
        content_type="multipart/form-data",
    )


@pytest.fixture
def alice(add_user: AddUser, token_for: TokenFor) -> str:
    add_user("alice")
    return token_for("alice")


def picture_url(app: Flask, username: str = "alice") -> str:
    url = stored_user(app, username).profile_picture
    assert url is not None
    return url


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims these dimensions: a decompression bomb's shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_upload_stores_and_serves_the_picture(
    app: Flask,
    client: FlaskClient,
    alice: str,
    pictures_dir: Path,
    image_format: str,
    content_type: str,
) -> None:
    response = upload(client, "alice", alice, image_bytes(image_format))

    assert response.status_code == 202
    assert response.get_json() == {"message": "Profile Picture Updated"}
    url = picture_url(app)
    assert url.startswith("/profile-pictures/")
    record = client.get("/users/alice", headers=bearer(alice)).get_json()
    assert record["profilePicture"] == url
    served = client.get(url)  # public: no token
    assert served.status_code == 200
    assert served.mimetype == content_type
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "immutable" in served.headers["Cache-Control"]
    assert Image.open(io.BytesIO(served.data)).size == (8, 6)
    assert [p.name for p in pictures_dir.iterdir()] == [url.rsplit("/", 1)[1]]


def test_metadata_is_stripped(app: Flask, client: FlaskClient, alice: str) -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # camera maker
    original = image_bytes("JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(original)).getexif()

    upload(client, "alice", alice, original + b"<script>trailing bytes</script>")

    stored = client.get(picture_url(app)).data
    assert not Image.open(io.BytesIO(stored)).getexif()
    assert b"SecretCam" not in stored and b"<script>" not in stored


def test_an_animated_gif_keeps_its_frames(app: Flask, client: FlaskClient, alice: str) -> None:
    frames = [Image.new("RGB", (4, 4), color) for color in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])

    assert upload(client, "alice", alice, out.getvalue()).status_code == 202

    assert Image.open(io.BytesIO(client.get(picture_url(app)).data)).n_frames == 3


@pytest.mark.parametrize(
    "data",
    [
        b"hello, not an image",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        image_bytes("PNG")[:60],  # truncated
        image_bytes("BMP"),  # an image, but not one of the accepted formats
        b"",
    ],
    ids=["text", "pdf", "svg", "truncated-png", "bmp", "empty"],
)
def test_non_images_are_422(
    app: Flask, client: FlaskClient, alice: str, pictures_dir: Path, data: bytes
) -> None:
    response = upload(client, "alice", alice, data)

    assert response.status_code == 422
    assert response.get_json() == NOT_AN_IMAGE
    assert stored_user(app, "alice").profile_picture is None
    assert not pictures_dir.exists() or list(pictures_dir.iterdir()) == []


@pytest.mark.parametrize("side", [5_000, 100_000])
def test_a_decompression_bomb_is_refused_before_decoding(
    client: FlaskClient, alice: str, side: int
) -> None:
    response = upload(client, "alice", alice, png_claiming(side, side))

    assert response.status_code == 422
    assert response.get_json() == {
        "error": "image too large: at most 16000000 pixels",
        "code": "image_too_large",
    }


def test_the_pixel_and_frame_limits_come_from_the_config(
    make_app: Callable[..., Flask], add_user: AddUser
) -> None:
    app = make_app(PROFILE_PICTURE_MAX_PIXELS=100, PROFILE_PICTURE_MAX_FRAMES=1)
    client = app.test_client()
    client.post("/users/", json={"username": "bob", "email": "b@e.org", "password": "x" * 10})
    token = client.post("/auth/token/", json={"username": "bob", "password": "x" * 10}).json[
        "access"
    ]
    frames = [Image.new("RGB", (4, 4), color) for color in ("red", "green")]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])

    large = upload(client, "bob", token, image_bytes("PNG", size=(20, 20)))
    animated = upload(client, "bob", token, out.getvalue())

    assert large.status_code == animated.status_code == 422
    assert large.get_json()["error"] == "image too large: at most 100 pixels"
    assert animated.get_json()["error"] == "image too large: at most 1 frames"


def test_a_picture_over_the_size_limit_is_413(make_app: Callable[..., Flask]) -> None:
    app = make_app(PROFILE_PICTURE_MAX_BYTES=1000, MAX_CONTENT_LENGTH=64 * 1024)
    client = app.test_client()
    client.post("/users/", json={"username": "bob", "email": "b@e.org", "password": "x" * 10})
    token = client.post("/auth/token/", json={"username": "bob", "password": "x" * 10}).json[
        "access"
    ]
    noisy = Image.frombytes("L", (64, 64), os.urandom(64 * 64))
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    assert len(out.getvalue()) > 1000

    over_picture_limit = upload(client, "bob", token, out.getvalue())
    over_body_limit = upload(client, "bob", token, b"\x00" * (65 * 1024))

    assert over_picture_limit.status_code == 413
    assert over_picture_limit.get_json()["code"] == "payload_too_large"
    assert over_body_limit.status_code == 413
    assert over_body_limit.is_json


def test_a_file_under_another_field_name_is_taken(
    app: Flask, client: FlaskClient, alice: str
) -> None:
    response = upload(client, "alice", alice, image_bytes(), field="image")

    assert response.status_code == 202


def test_no_file_is_400(client: FlaskClient, alice: str) -> None:
    form = client.put(
        "/users/alice/pictureupload",
        data={"profilePicture": "just text"},
        headers=bearer(alice),
        content_type="multipart/form-data",
    )
    as_json = client.put("/users/alice/pictureupload", json={"a": 1}, headers=bearer(alice))

    for response in (form, as_json):
        assert response.status_code == 400
        assert response.get_json()["errors"] == {"profilePicture": "missing required field"}


def test_a_new_picture_replaces_the_stored_one(
    app: Flask, client: FlaskClient, alice: str, pictures_dir: Path
) -> None:
    upload(client, "alice", alice, image_bytes("PNG"))
    first = picture_url(app)

    upload(client, "alice", alice, image_bytes("JPEG"))

    second = picture_url(app)
    assert second != first
    assert client.get(first).status_code == 404
    assert [p.name for p in pictures_dir.iterdir()] == [second.rsplit("/", 1)[1]]


def test_who_may_upload(
    app: Flask,
    client: FlaskClient,
    alice: str,
    add_user: AddUser,
    token_for: TokenFor,
    staff_token: Callable[..., str],
) -> None:
    add_user("bob")
    picture = image_bytes()

    assert upload(client, "alice", None, picture).status_code == 401
    assert upload(client, "alice", token_for("bob"), picture).status_code == 403
    assert upload(client, "nobody", token_for("bob"), picture).status_code == 403
    assert upload(client, "alice", staff_token(event=["update"]), picture).status_code == 403
    assert upload(client, "alice", staff_token(user=["update"]), picture).status_code == 202
    assert stored_user(app, "bob").profile_picture is None


@pytest.mark.parametrize("name", ["nothing.png", "..%2F..%2Fetc%2Fpasswd", "a" * 32 + ".exe"])
def test_unknown_picture_names_are_404(client: FlaskClient, name: str) -> None:
    response = client.get(f"/profile-pictures/{name}")

    assert response.status_code == 404
    assert response.is_json


# Pictures of linked sign-in accounts


def link(app: Flask, username: str, provider: str, picture: str | None) -> None:
    with app.app_context():
        user_id = stored_user(app, username).public_id
        user = user_by_subject(user_id)
        assert user is not None
        db.session.add(
            LinkedIdentity(
                user_id=user.id, provider=provider, subject="sub-42", picture_url=picture
            )
        )
        db.session.commit()


def test_picture_from_a_linked_account(
    app: Flask, client: FlaskClient, alice: str, pictures_dir: Path
) -> None:
    upload(client, "alice", alice, image_bytes())
    uploaded = picture_url(app)
    link(app, "alice", "google", "https://lh3.example.com/alice.jpg")

    response = client.put(
        "/users/alice/picture", json={"provider": "google"}, headers=bearer(alice)
    )

    assert response.status_code == 200
    assert response.get_json() == {"message": "Profile Picture updated"}
    assert picture_url(app) == "https://lh3.example.com/alice.jpg"
    assert client.get(uploaded).status_code == 404  # the stored upload went
    assert list(pictures_dir.iterdir()) == []


@pytest.mark.parametrize("picture", [None, "linked-without-picture"])
def test_no_linked_picture_is_422(
    app: Flask, client: FlaskClient, alice: str, picture: str | None
) -> None:
    if picture:
        link(app, "alice", "github", None)

    response = client.put(
        "/users/alice/picture", json={"provider": "github"}, headers=bearer(alice)
    )

    assert response.status_code == 422
    assert response.get_json() == {
        "error": "no linked github account with a picture",
        "code": "no_linked_identity",
    }


@pytest.mark.parametrize("body", [{}, {"provider": "Goo gle"}, {"provider": 5}])
def test_picture_from_provider_invalid_input_is_400(
    client: FlaskClient, alice: str, body: dict[str, Any]
) -> None:
    response = client.put("/users/alice/picture", json=body, headers=bearer(alice))

    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"provider"}


def test_picture_from_provider_of_someone_else_is_403(
    app: Flask, client: FlaskClient, alice: str, add_user: AddUser, token_for: TokenFor
) -> None:
    add_user("bob")
    link(app, "alice", "google", "https://lh3.example.com/alice.jpg")

    response = client.put(
        "/users/alice/picture", json={"provider": "google"}, headers=bearer(token_for("bob"))
    )

    assert response.status_code == 403
    assert stored_user(app, "alice").profile_picture is None
