"""Profile pictures: uploads (checked, cleaned and kept by a real media_service on
loopback; auth_service only bounds their size) and linked-account pictures."""

from __future__ import annotations

import io
import logging
import os
import struct
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import ExifTags, Image

from auth_service.context import auth_context
from auth_service.models import LinkedIdentity, User, db
from auth_service.pictures import MediaPictureStore
from auth_service.service import user_by_subject
from servicekit.testing import TestKeys
from tests.auth_service.auth_helpers import bearer, image_bytes, set_user, stored_user
from tests.auth_service.auth_media import MediaServer, closed_port_url, key_of, silent_server

AddUser = Callable[..., str]
TokenFor = Callable[..., str]
ServeMedia = Callable[..., MediaServer]
Decode = Callable[[str], dict[str, Any]]
NOT_AN_IMAGE = {"error": "Only image type data allowed"}
MEDIA_DOWN = {"error": "the media service is unavailable; try again", "code": "service_unavailable"}
ELSEWHERE = "https://pictures.example.org/alice.png"


def upload(
    client: FlaskClient,
    username: str,
    token: str | None,
    data: bytes,
    field: str = "profilePicture",
    filename: str = "me.png",
    headers: dict[str, str] | None = None,
    content_type: str | None = None,
) -> Any:
    return client.put(
        f"/users/{username}/pictureupload",
        data={field: (io.BytesIO(data), filename, content_type)},  # None: from the name
        headers={**(bearer(token) if token else {}), **(headers or {})},
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


def signed_up(app: Flask, username: str = "bob") -> str:
    """Register `username` through `app`; their access token."""
    client = app.test_client()
    credentials = {"username": username, "password": "x" * 10}
    client.post("/users/", json={**credentials, "email": f"{username}@example.org"})
    return str(client.post("/auth/token/", json=credentials).get_json()["access"])


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


def noisy_png(side: int) -> bytes:
    """A PNG that compresses badly: about side² bytes."""
    out = io.BytesIO()
    Image.frombytes("L", (side, side), os.urandom(side * side)).save(out, format="PNG")
    return out.getvalue()


def animated_gif(frames: int, **save: Any) -> bytes:
    images = [Image.new("RGB", (4, 4), (80 * i % 256, 40, 90)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], **save)
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    """A JPEG whose EXIF names a camera and where the picture was taken."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 17.0, 40.0)
    return image_bytes("JPEG", exif=exif.tobytes())


def nothing_stored(app: Flask, media: MediaServer, username: str, picture: str | None) -> None:
    """media_service kept nothing (no file, temporary or not; no record), and the user's
    picture is still `picture`."""
    assert media.everything_on_disk() == []
    assert media.file_records() == []
    assert stored_user(app, username).profile_picture == picture


# Stored in media_service


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_upload_stores_the_picture_in_media_service(
    app: Flask,
    client: FlaskClient,
    alice: str,
    media: MediaServer,
    image_format: str,
    content_type: str,
) -> None:
    response = upload(client, "alice", alice, image_bytes(image_format))

    assert response.status_code == 202
    assert response.get_json() == {"message": "Profile Picture Updated"}
    url = picture_url(app)
    assert url.startswith("/media/files/")
    record = client.get("/users/alice", headers=bearer(alice)).get_json()
    assert record["profilePicture"] == url
    served = media.fetch(url)  # public: no token
    assert served.status_code == 200
    assert served.headers["Content-Type"] == content_type
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    cache = served.headers["Cache-Control"]
    assert "public" in cache and "immutable" in cache and "max-age=31536000" in cache
    assert Image.open(io.BytesIO(served.content)).size == (8, 6)
    assert media.files_on_disk() == [key_of(url)]
    (stored,) = media.file_records()
    owner = stored_user(app, "alice").public_id
    assert (stored.key, stored.owner, stored.purpose) == (key_of(url), owner, "profile-picture")
    assert stored.service == "service:auth"


def test_calls_to_media_carry_a_cached_service_token_and_the_request_id(
    app: Flask, client: FlaskClient, alice: str, media: MediaServer, decode: Decode
) -> None:
    upload(client, "alice", alice, image_bytes(), headers={"X-Request-ID": "upload-1"})
    first = picture_url(app)
    upload(client, "alice", alice, image_bytes(), headers={"X-Request-ID": "upload-2"})

    assert [(r.method, r.path, r.request_id) for r in media.requests] == [
        ("POST", "/internal/files", "upload-1"),
        ("POST", "/internal/files", "upload-2"),
        ("DELETE", f"/internal/files/{key_of(first)}", "upload-2"),
    ]
    (authorization,) = {r.authorization for r in media.requests}  # one token, reused
    claims = decode(authorization.removeprefix("Bearer "))
    assert (claims["sub"], claims["role"], claims["type"]) == ("service:auth", "service", "access")


def test_a_service_token_close_to_its_expiry_is_renewed(
    make_app: Callable[..., Flask], media: MediaServer
) -> None:
    app = make_app(JWT_ACCESS_TTL=20)  # within the renewal margin as soon as it is signed
    token = signed_up(app)

    upload(app.test_client(), "bob", token, image_bytes())
    upload(app.test_client(), "bob", token, image_bytes())

    assert [r.method for r in media.requests] == ["POST", "POST", "DELETE"]
    assert len({r.authorization for r in media.requests}) == 3


def test_metadata_is_stripped(
    app: Flask, client: FlaskClient, alice: str, media: MediaServer
) -> None:
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    response = upload(client, "alice", alice, original + b"<script>trailing bytes</script>")

    assert response.status_code == 202
    stored = media.fetch(picture_url(app)).content
    assert not Image.open(io.BytesIO(stored)).getexif()
    assert b"Exif" not in stored
    assert b"SecretCam" not in stored and b"<script>" not in stored


def test_an_animated_gif_loses_its_comment(
    app: Flask, client: FlaskClient, alice: str, media: MediaServer
) -> None:
    original = animated_gif(3, comment=b"a secret note")
    assert b"a secret note" in original

    assert upload(client, "alice", alice, original).status_code == 202

    stored = media.fetch(picture_url(app)).content
    assert b"a secret note" not in stored
    assert "comment" not in Image.open(io.BytesIO(stored)).info


def test_an_animated_gif_keeps_its_frames(
    app: Flask, client: FlaskClient, alice: str, media: MediaServer
) -> None:
    assert upload(client, "alice", alice, animated_gif(3)).status_code == 202

    assert Image.open(io.BytesIO(media.fetch(picture_url(app)).content)).n_frames == 3


def test_a_file_under_another_field_name_is_taken(
    app: Flask, client: FlaskClient, alice: str, media: MediaServer
) -> None:
    response = upload(client, "alice", alice, image_bytes(), field="image")

    assert response.status_code == 202
    assert media.fetch(picture_url(app)).status_code == 200


def test_media_decides_the_format_not_the_client(
    app: Flask, client: FlaskClient, alice: str, media: MediaServer
) -> None:
    response = upload(
        client, "alice", alice, image_bytes("PNG"), filename="me.gif", content_type="image/gif"
    )

    assert response.status_code == 202
    url = picture_url(app)
    assert url.endswith(".png")
    assert media.fetch(url).headers["Content-Type"] == "image/png"
    (stored,) = media.file_records()
    assert stored.content_type == "image/png"


def test_the_upload_is_streamed_to_media_not_read_into_memory(
    make_app: Callable[..., Flask], media: MediaServer
) -> None:
    """16 MiB go on to media_service in blocks, with their exact length. Read whole, they
    would be held twice (the file, then the multipart body): 32 MiB at least. What this
    process holds at most while both services handle it is bounded by 16 MiB (the test
    server under media_service allocates 10 MB for a read of its own after answering)."""
    size = 16 * 1024 * 1024
    app = make_app(PROFILE_PICTURE_MAX_BYTES=size, MAX_CONTENT_LENGTH=2 * size)
    token = signed_up(app)
    data = os.urandom(size)
    tracemalloc.start()  # counts what is allocated from now on
    try:
        response = upload(app.test_client(), "bob", token, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 422
    assert response.get_json() == NOT_AN_IMAGE
    (sent,) = media.requests
    assert size < int(sent.content_length) < size + 1024  # not chunked: one exact length
    assert peak < size


def test_a_new_picture_replaces_the_stored_one(
    app: Flask, client: FlaskClient, alice: str, media: MediaServer
) -> None:
    upload(client, "alice", alice, image_bytes("PNG"))
    first = picture_url(app)

    upload(client, "alice", alice, image_bytes("JPEG"))

    second = picture_url(app)
    assert second != first
    assert media.fetch(first).status_code == 404
    assert media.fetch(second).status_code == 200
    assert media.files_on_disk() == [key_of(second)]
    assert [record.key for record in media.file_records()] == [key_of(second)]


def test_a_picture_already_gone_from_media_is_no_obstacle(
    app: Flask,
    client: FlaskClient,
    alice: str,
    media: MediaServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    upload(client, "alice", alice, image_bytes())
    first = picture_url(app)
    service_token = client.post(
        "/internal/service-token",
        json={"service": "auth"},
        headers={"X-Service-Secret": "test-secret"},
    ).get_json()["access"]
    gone = media.app.test_client().delete(
        f"/internal/files/{key_of(first)}", headers=bearer(service_token)
    )
    assert gone.status_code == 204

    with caplog.at_level(logging.WARNING):
        response = upload(client, "alice", alice, image_bytes("JPEG"))

    assert response.status_code == 202
    assert picture_url(app) != first
    assert media.requests[-1].path == f"/internal/files/{key_of(first)}"
    assert not [r for r in caplog.records if r.name == "servicekit.files"]  # 404: gone


def test_pictures_media_did_not_store_are_not_deleted_there(
    app: Flask, client: FlaskClient, alice: str, media: MediaServer
) -> None:
    set_user(app, "alice", profile_picture=ELSEWHERE)

    assert upload(client, "alice", alice, image_bytes()).status_code == 202
    response = client.put("/users/alice", json={"profilePicture": ELSEWHERE}, headers=bearer(alice))

    assert response.status_code == 200
    assert [r.method for r in media.requests] == ["POST", "DELETE"]  # the upload's file only
    assert media.files_on_disk() == []


def test_a_failed_delete_is_logged_and_the_change_stands(
    app: Flask,
    client: FlaskClient,
    alice: str,
    media: MediaServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    upload(client, "alice", alice, image_bytes())
    uploaded = picture_url(app)
    store = auth_context(app).pictures
    assert isinstance(store, MediaPictureStore)
    store.files.client.base_url = closed_port_url()  # media goes away

    with caplog.at_level(logging.WARNING):
        response = client.put(
            "/users/alice", json={"profilePicture": ELSEWHERE}, headers=bearer(alice)
        )

    assert response.status_code == 200
    assert picture_url(app) == ELSEWHERE
    (logged,) = [r for r in caplog.records if r.name == "servicekit.files"]
    assert logged.getMessage() == "file not deleted"
    assert logged.key == key_of(uploaded)  # type: ignore[attr-defined]
    assert media.files_on_disk() == [key_of(uploaded)]


def test_a_stored_picture_url_cannot_be_set_by_hand(
    app: Flask,
    client: FlaskClient,
    alice: str,
    add_user: AddUser,
    token_for: TokenFor,
    media: MediaServer,
    registration: Callable[..., dict[str, Any]],
) -> None:
    """Else replacing one's picture would delete another user's picture from media."""
    add_user("bob")
    upload(client, "bob", token_for("bob"), image_bytes())
    bobs = picture_url(app, "bob")
    upload(client, "alice", alice, image_bytes())
    own = picture_url(app)

    taken = client.put("/users/alice", json={"profilePicture": bobs}, headers=bearer(alice))
    registered = client.post("/users/", json=registration(profilePicture=bobs))
    unchanged = client.put("/users/alice", json={"profilePicture": own}, headers=bearer(alice))

    for refused in (taken, registered):
        assert refused.status_code == 400
        assert set(refused.get_json()["errors"]) == {"profilePicture"}
    assert unchanged.status_code == 200
    assert picture_url(app) == own
    assert media.fetch(bobs).status_code == 200


# Refused by media_service


@pytest.mark.parametrize(
    "data",
    [
        b"hello, not an image",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        image_bytes("PNG")[:60],  # truncated
        image_bytes("JPEG", size=(64, 48))[:400],  # truncated
        image_bytes("BMP"),  # an image, but not one of the accepted formats
    ],
    ids=["text", "pdf", "svg", "truncated-png", "truncated-jpeg", "bmp"],
)
def test_non_images_are_refused_by_media_as_422(
    make_app: Callable[..., Flask], media: MediaServer, data: bytes
) -> None:
    app = make_app()
    token = signed_up(app)
    set_user(app, "bob", profile_picture=ELSEWHERE)

    response = upload(app.test_client(), "bob", token, data)

    assert response.status_code == 422
    assert response.get_json() == NOT_AN_IMAGE
    assert [r.method for r in media.requests] == ["POST"]
    nothing_stored(app, media, "bob", ELSEWHERE)


@pytest.mark.parametrize(
    ("side", "reason"),
    [
        (8_000, "8000x8000 is over 40000000 pixels"),  # media_service's limit
        (100_000, "at most 40000000 pixels"),  # so far over that Pillow refuses to open it
    ],
)
def test_a_decompression_bomb_is_refused_by_media(
    make_app: Callable[..., Flask], media: MediaServer, side: int, reason: str
) -> None:
    app = make_app()
    token = signed_up(app)
    set_user(app, "bob", profile_picture=ELSEWHERE)
    bomb = png_claiming(side, side)
    assert len(bomb) < 4096

    response = upload(app.test_client(), "bob", token, bomb)

    assert response.status_code == 422
    assert response.get_json() == {
        "error": f"image too large: {reason}",
        "code": "image_too_large",
    }
    assert [r.method for r in media.requests] == ["POST"]
    nothing_stored(app, media, "bob", ELSEWHERE)


# Refused before media_service is called


def test_a_picture_over_the_size_limit_is_413(
    make_app: Callable[..., Flask], media: MediaServer
) -> None:
    picture = image_bytes()
    app = make_app(PROFILE_PICTURE_MAX_BYTES=len(picture), MAX_CONTENT_LENGTH=64 * 1024)
    token = signed_up(app)
    client = app.test_client()

    over_picture_limit = upload(client, "bob", token, picture + b"\x00")
    over_body_limit = upload(client, "bob", token, b"\x00" * (65 * 1024))

    assert over_picture_limit.status_code == 413
    assert over_picture_limit.get_json() == {
        "error": f"picture over {len(picture)} bytes",
        "code": "payload_too_large",
    }
    assert over_body_limit.status_code == 413
    assert over_body_limit.is_json
    assert media.requests == []
    assert stored_user(app, "bob").profile_picture is None
    assert upload(client, "bob", token, picture).status_code == 202  # at the limit
    assert [r.method for r in media.requests] == ["POST"]


def test_an_empty_file_is_400(
    app: Flask, client: FlaskClient, alice: str, media: MediaServer
) -> None:
    response = upload(client, "alice", alice, b"")

    assert response.status_code == 400
    assert response.get_json()["errors"] == {"profilePicture": "empty file"}
    assert media.requests == []
    assert stored_user(app, "alice").profile_picture is None


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


def test_who_may_upload(
    app: Flask,
    client: FlaskClient,
    alice: str,
    add_user: AddUser,
    token_for: TokenFor,
    staff_token: Callable[..., str],
    media: MediaServer,
) -> None:
    add_user("bob")
    picture = image_bytes()

    assert upload(client, "alice", None, picture).status_code == 401
    assert upload(client, "alice", token_for("bob"), picture).status_code == 403
    assert upload(client, "nobody", token_for("bob"), picture).status_code == 403
    assert upload(client, "alice", staff_token(event=["update"]), picture).status_code == 403
    assert media.requests == []
    assert upload(client, "alice", staff_token(user=["update"]), picture).status_code == 202
    assert stored_user(app, "bob").profile_picture is None
    assert [r.method for r in media.requests] == ["POST"]


# media_service refusing, failing or away


@pytest.mark.parametrize(
    ("media_config", "picture", "status", "body"),
    [
        (
            {"MEDIA_MAX_BYTES": 2000},
            noisy_png(64),
            413,
            {"error": "picture too large", "code": "payload_too_large"},
        ),
        (
            {"MEDIA_MAX_PIXELS": 40},
            image_bytes(),  # 48 pixels
            422,
            {"error": "image too large: 8x6 is over 40 pixels", "code": "image_too_large"},
        ),
        (
            {"MEDIA_MAX_FRAMES": 2},
            animated_gif(3),
            422,
            {"error": "image too large: 3 frames is over 2", "code": "image_too_large"},
        ),
    ],
    ids=["bytes", "pixels", "frames"],
)
def test_media_refusals_are_answered_like_auth_s_own(
    make_app: Callable[..., Flask],
    serve_media: ServeMedia,
    media_config: dict[str, int],
    picture: bytes,
    status: int,
    body: dict[str, str],
) -> None:
    media = serve_media(**media_config)
    app = make_app(MEDIA_SERVICE_URL=media.url)
    token = signed_up(app)

    response = upload(app.test_client(), "bob", token, picture)

    assert response.status_code == status
    assert response.get_json() == body
    assert [r.method for r in media.requests] == ["POST"]
    assert stored_user(app, "bob").profile_picture is None
    assert media.files_on_disk() == [] and media.file_records() == []


@contextmanager
def media_that_is(state: str, serve_media: ServeMedia, tmp_path: Path) -> Iterator[str]:
    """The URL of a media_service that refuses connections, fails (500: its storage
    folder is a file), or accepts a connection and never answers."""
    with ExitStack() as stack:
        if state == "refusing":
            yield closed_port_url()
        elif state == "failing":
            blocked = tmp_path / "storage-is-a-file"
            blocked.write_bytes(b"")
            yield serve_media(MEDIA_STORAGE_DIR=str(blocked)).url
        else:
            yield stack.enter_context(silent_server())


@pytest.mark.parametrize("state", ["refusing", "failing", "silent"])
def test_media_unavailable_is_503_and_changes_nothing(
    make_app: Callable[..., Flask], serve_media: ServeMedia, tmp_path: Path, state: str
) -> None:
    with media_that_is(state, serve_media, tmp_path) as url:
        app = make_app(MEDIA_SERVICE_URL=url, MEDIA_READ_TIMEOUT=0.5)
        token = signed_up(app)
        set_user(app, "bob", profile_picture=ELSEWHERE)

        response = upload(app.test_client(), "bob", token, image_bytes())

    assert response.status_code == 503
    assert response.get_json() == MEDIA_DOWN
    assert stored_user(app, "bob").profile_picture == ELSEWHERE


def test_a_token_media_refuses_is_503_and_logged_as_an_error(
    make_app: Callable[..., Flask], serve_media: ServeMedia, caplog: pytest.LogCaptureFixture
) -> None:
    media = serve_media(keys=TestKeys().key_set)  # trusts other keys than auth's
    app = make_app(MEDIA_SERVICE_URL=media.url)
    token = signed_up(app)

    with caplog.at_level(logging.WARNING):
        response = upload(app.test_client(), "bob", token, image_bytes())

    assert response.status_code == 503
    assert response.get_json() == MEDIA_DOWN
    assert stored_user(app, "bob").profile_picture is None
    (logged,) = [r for r in caplog.records if r.name == "servicekit.files"]
    assert (logged.levelname, logged.getMessage()) == (
        "ERROR",
        "unexpected answer from media_service",
    )
    assert logged.status == 401  # type: ignore[attr-defined]


def test_nothing_is_left_on_media_when_the_user_cannot_be_written(
    app: Flask, client: FlaskClient, alice: str, media: MediaServer
) -> None:
    """The user row is deleted while media_service stores the picture: the write that
    follows fails, and the picture media_service has just stored is deleted again."""

    def delete_alice() -> None:
        with app.app_context():
            db.session.delete(db.session.query(User).filter_by(username="alice").one())
            db.session.commit()

    media.recorder.after_store = delete_alice

    response = upload(client, "alice", alice, image_bytes())

    assert response.status_code == 404
    assert response.get_json() == {"error": "no such user", "code": "not_found"}
    assert [r.method for r in media.requests] == ["POST", "DELETE"]
    assert media.files_on_disk() == [] and media.file_records() == []


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
    app: Flask, client: FlaskClient, alice: str, media: MediaServer
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
    assert media.fetch(uploaded).status_code == 404  # the stored upload went
    assert media.files_on_disk() == []


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
