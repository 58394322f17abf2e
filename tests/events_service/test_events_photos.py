"""An event's photo and logo: checked, cleaned and kept by a real media_service on loopback,
served to anyone; events_service only bounds their size."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete

from events_service.models import Event, db
from tests.auth_service.auth_helpers import image_bytes
from tests.auth_service.auth_media import MediaServer, closed_port_url, key_of
from tests.events_service.events_fixtures import add_catalogue, create_event
from tests.events_service.events_media import served_media, upload
from tests.real_auth import AuthServer, User

NOT_AN_IMAGE = {"error": "Only image type data allowed"}
MEDIA_DOWN = {"error": "the media service is unavailable; try again", "code": "service_unavailable"}


@pytest.fixture
def media(
    service_app: Callable[..., Flask], tmp_path: Path, auth: AuthServer
) -> Iterator[MediaServer]:
    with served_media(service_app, tmp_path) as server:
        yield server


@pytest.fixture
def app(make_app: Callable[..., Flask], media: MediaServer) -> Flask:
    return make_app(MEDIA_SERVICE_URL=media.url)


@pytest.fixture
def public_id(client: FlaskClient, staff: User) -> str:
    add_catalogue(client, staff)
    return str(create_event(client, staff)["publicId"])


def detail(client: FlaskClient, public_id: str) -> dict[str, str | None]:
    body = client.get(f"/events/{public_id}").get_json()
    return {"eventPicture": body["eventPicture"], "eventLogo": body["eventLogo"]}


@pytest.mark.parametrize("slash", ["", "/"])
def test_staff_set_the_photo_served_to_anyone(
    client: FlaskClient, staff: User, public_id: str, media: MediaServer, slash: str
) -> None:
    response = client.post(
        f"/events/{public_id}/photo{slash}",
        data={"photo": (io.BytesIO(image_bytes()), "photo.png")},
        headers=staff.headers,
        content_type="multipart/form-data",
    )

    assert response.status_code == 200
    body = response.get_json()
    picture = body["eventPicture"]
    assert body == {"publicId": public_id, "eventPicture": picture, "eventLogo": None}
    assert picture.startswith("/media/files/")
    assert detail(client, public_id) == {"eventPicture": picture, "eventLogo": None}
    served = requests.get(media.url + picture, timeout=10)  # no token
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/png"
    (record,) = media.file_records()
    assert (record.owner, record.purpose, record.service) == (
        public_id,
        "event-photo",
        "service:events",
    )


def test_photo_and_logo_in_one_request(
    client: FlaskClient, staff: User, public_id: str, media: MediaServer
) -> None:
    response = upload(
        client, public_id, staff.headers, photo=image_bytes(), logo=image_bytes("GIF")
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["eventPicture"].startswith("/media/files/")
    assert body["eventLogo"].endswith(".gif")
    assert detail(client, public_id) == {
        "eventPicture": body["eventPicture"],
        "eventLogo": body["eventLogo"],
    }
    assert sorted(r.purpose for r in media.file_records()) == ["event-logo", "event-photo"]
    assert len(media.files_on_disk()) == 2


@pytest.mark.parametrize("field", ["picture", "image"])
def test_picture_and_image_are_the_photo(
    client: FlaskClient, staff: User, public_id: str, media: MediaServer, field: str
) -> None:
    response = upload(client, public_id, staff.headers, **{field: image_bytes("JPEG")})

    assert response.status_code == 200
    assert response.get_json()["eventPicture"].endswith(".jpg")
    assert response.get_json()["eventLogo"] is None


def test_a_logo_alone_keeps_the_photo(
    client: FlaskClient, staff: User, public_id: str, media: MediaServer
) -> None:
    photo = upload(client, public_id, staff.headers, photo=image_bytes()).get_json()["eventPicture"]

    logo = upload(client, public_id, staff.headers, logo=image_bytes()).get_json()

    assert logo["eventPicture"] == photo
    assert len(media.files_on_disk()) == 2


def test_replacing_a_photo_removes_the_old_file(
    client: FlaskClient, staff: User, public_id: str, media: MediaServer
) -> None:
    first = upload(client, public_id, staff.headers, photo=image_bytes()).get_json()["eventPicture"]

    second = upload(client, public_id, staff.headers, photo=image_bytes("WEBP"))

    new = second.get_json()["eventPicture"]
    assert new != first
    assert media.files_on_disk() == [key_of(new)]
    assert requests.get(media.url + first, timeout=10).status_code == 404
    assert requests.get(media.url + new, timeout=10).status_code == 200


def test_a_non_image_is_the_document_s_422_and_the_photo_stays(
    client: FlaskClient, staff: User, public_id: str, media: MediaServer
) -> None:
    kept = upload(client, public_id, staff.headers, photo=image_bytes()).get_json()["eventPicture"]

    response = upload(client, public_id, staff.headers, photo=b"%PDF-1.4 not a picture")

    assert response.status_code == 422
    assert response.get_json() == NOT_AN_IMAGE
    assert detail(client, public_id) == {"eventPicture": kept, "eventLogo": None}
    assert media.files_on_disk() == [key_of(kept)]


def test_a_refused_logo_takes_the_photo_of_the_same_request_back(
    client: FlaskClient, staff: User, public_id: str, media: MediaServer
) -> None:
    response = upload(client, public_id, staff.headers, photo=image_bytes(), logo=b"text")

    assert response.status_code == 422
    assert response.get_json() == NOT_AN_IMAGE
    assert detail(client, public_id) == {"eventPicture": None, "eventLogo": None}
    assert media.files_on_disk() == []


def test_an_image_over_media_s_limits_is_422(
    service_app: Callable[..., Flask],
    make_app: Callable[..., Flask],
    tmp_path: Path,
    staff: User,
    auth: AuthServer,
) -> None:
    with served_media(service_app, tmp_path, MEDIA_MAX_PIXELS=40) as small:
        client = make_app(MEDIA_SERVICE_URL=small.url).test_client()
        add_catalogue(client, staff)
        public_id = create_event(client, staff)["publicId"]

        response = upload(client, public_id, staff.headers, photo=image_bytes())  # 48 pixels

    assert response.status_code == 422
    assert response.get_json() == {
        "error": "image too large: 8x6 is over 40 pixels",
        "code": "image_too_large",
    }


def test_a_photo_over_the_size_limit_is_413_before_media_is_asked(
    make_app: Callable[..., Flask], media: MediaServer, staff: User
) -> None:
    picture = image_bytes()
    client = make_app(
        MEDIA_SERVICE_URL=media.url, EVENTS_PHOTO_MAX_BYTES=len(picture)
    ).test_client()
    add_catalogue(client, staff)
    public_id = create_event(client, staff)["publicId"]

    response = upload(client, public_id, staff.headers, logo=picture + b"\x00")

    assert response.status_code == 413
    assert response.get_json() == {
        "error": f"logo over {len(picture)} bytes",
        "code": "payload_too_large",
    }
    assert media.requests == []


@pytest.mark.parametrize(
    ("files", "field"),
    [
        ({}, "photo"),
        ({"photo": b""}, "photo"),
        ({"logo": b""}, "logo"),
        ({"file": image_bytes()}, "file"),
        ({"photo": image_bytes(), "picture": image_bytes()}, "picture"),
        ({"logo": [image_bytes(), image_bytes()]}, "logo"),
    ],
    ids=["none", "empty-photo", "empty-logo", "unknown-field", "two-photos", "two-logos"],
)
def test_a_missing_empty_or_doubled_file_is_400_before_media_is_asked(
    client: FlaskClient,
    staff: User,
    public_id: str,
    media: MediaServer,
    files: dict[str, bytes | list[bytes]],
    field: str,
) -> None:
    response = upload(client, public_id, staff.headers, **files)

    assert response.status_code == 400
    assert response.get_json()["code"] == "validation_error"
    assert field in response.get_json()["errors"]
    assert media.requests == []


def test_a_json_body_is_400(client: FlaskClient, staff: User, public_id: str) -> None:
    response = client.post(f"/events/{public_id}/photo", json={"photo": "x"}, headers=staff.headers)

    assert response.status_code == 400
    assert response.get_json()["errors"] == {"photo": "missing required field"}


def test_an_unknown_event_is_404(client: FlaskClient, staff: User, media: MediaServer) -> None:
    response = upload(client, "nothing", staff.headers, photo=image_bytes())

    assert response.status_code == 404
    assert media.requests == []


def test_media_down_is_503_and_changes_nothing(
    make_app: Callable[..., Flask], staff: User, media: MediaServer
) -> None:
    # Both apps first: making an app may reset the test's database (PostgreSQL).
    client = make_app(MEDIA_SERVICE_URL=media.url).test_client()
    away = make_app(MEDIA_SERVICE_URL=closed_port_url()).test_client()  # the same database
    add_catalogue(client, staff)
    public_id = create_event(client, staff)["publicId"]
    kept = upload(client, public_id, staff.headers, photo=image_bytes()).get_json()["eventPicture"]

    response = upload(away, public_id, staff.headers, photo=image_bytes("JPEG"))

    assert response.status_code == 503
    assert response.get_json() == MEDIA_DOWN
    assert response.headers["Retry-After"] == "5"
    assert detail(client, public_id) == {"eventPicture": kept, "eventLogo": None}


def test_without_a_service_secret_uploads_are_503(
    make_app: Callable[..., Flask], staff: User, media: MediaServer
) -> None:
    client = make_app(MEDIA_SERVICE_URL=media.url, SERVICE_SECRET="").test_client()
    add_catalogue(client, staff)
    public_id = create_event(client, staff)["publicId"]

    response = upload(client, public_id, staff.headers, photo=image_bytes())

    assert response.status_code == 503
    assert media.requests == []


def test_deleting_the_event_deletes_its_files(
    client: FlaskClient, staff: User, public_id: str, media: MediaServer
) -> None:
    upload(client, public_id, staff.headers, photo=image_bytes(), logo=image_bytes())
    assert len(media.files_on_disk()) == 2

    assert client.delete(f"/events/{public_id}", headers=staff.headers).status_code == 200

    assert media.files_on_disk() == []


def test_an_event_deleted_while_media_stores_leaves_no_file(
    app: Flask, client: FlaskClient, staff: User, public_id: str, media: MediaServer
) -> None:
    def delete_the_event() -> None:
        with app.app_context():
            db.session.execute(delete(Event).where(Event.public_id == public_id))
            db.session.commit()

    media.recorder.after_store = delete_the_event

    response = upload(client, public_id, staff.headers, photo=image_bytes())

    assert response.status_code == 404
    assert media.files_on_disk() == []


def test_who_may_upload(
    client: FlaskClient,
    auth: AuthServer,
    alice: User,
    superuser: User,
    staff: User,
    public_id: str,
    media: MediaServer,
) -> None:
    reader = auth.add_user("staff_2", role="staff", priv={"event": "crd"})
    updater = auth.add_user("staff_3", role="staff", priv={"event": "u"})

    assert upload(client, public_id, {}, photo=image_bytes()).status_code == 401
    assert upload(client, public_id, alice.headers, photo=image_bytes()).status_code == 403
    assert upload(client, public_id, reader.headers, photo=image_bytes()).status_code == 403
    assert media.requests == []
    assert upload(client, public_id, updater.headers, photo=image_bytes()).status_code == 200
    assert upload(client, public_id, superuser.headers, logo=image_bytes()).status_code == 200
