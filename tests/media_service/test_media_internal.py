"""The internal file store of the other services: service tokens only, public URLs."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import ExifTags, Image
from werkzeug.test import TestResponse

from media_service.storage import KEY_PATTERN
from servicekit.testing import TestKeys
from tests.media_service.media_helpers import (
    NOT_AN_IMAGE,
    all_files_under,
    bearer,
    created,
    decoded,
    image_bytes,
    key_of,
    media_path,
    multipart,
    png_declaring,
    stored_file_count,
)

FILE_KEYS = {"key", "url", "owner", "purpose", "content_type", "size", "width", "height"}


def store(
    client: FlaskClient,
    headers: dict[str, str],
    data: bytes | None = None,
    **form: Any,
) -> TestResponse:
    fields: dict[str, Any] = {"owner": "user-42", **form}
    if data is not None:
        fields.update(multipart("file", data, "me.png"))
    return client.post(
        "/internal/files", data=fields, headers=headers, content_type="multipart/form-data"
    )


def test_a_service_stores_a_file_and_gets_a_public_url(
    client: FlaskClient, service_headers: dict[str, str], storage_dir: Path
) -> None:
    response = store(
        client, service_headers, image_bytes("PNG", (40, 30)), purpose="profile-picture"
    )
    assert response.status_code == 201
    body = response.json
    assert set(body) == FILE_KEYS
    assert KEY_PATTERN.match(body["key"]) and body["key"].startswith("files/")
    assert body["url"] == f"/media/{body['key']}"
    assert (body["owner"], body["purpose"]) == ("user-42", "profile-picture")
    assert (body["content_type"], body["width"], body["height"]) == ("image/png", 40, 30)
    assert all_files_under(storage_dir) == [body["key"]]
    served = client.get(body["url"])  # no signature, no token
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert len(served.data) == body["size"]
    assert decoded(served.data).size == (40, 30)


def test_the_purpose_defaults_to_file(client: FlaskClient, service_headers: dict[str, str]) -> None:
    response = store(client, service_headers, image_bytes())
    assert response.status_code == 201 and response.json["purpose"] == "file"


def test_a_users_token_is_403_and_no_token_is_401(
    app: Flask, client: FlaskClient, alice: dict[str, str], test_keys: TestKeys
) -> None:
    refused = store(client, alice, image_bytes())
    assert refused.status_code == 403
    assert refused.json["code"] == "forbidden"
    staff = {"Authorization": f"Bearer {test_keys.token(sub='s', role='superuser')}"}
    assert store(client, staff, image_bytes()).status_code == 403
    anonymous = store(client, {}, image_bytes())
    assert anonymous.status_code == 401
    assert client.delete("/internal/files/files/" + "a" * 32 + ".png").status_code == 401
    assert (
        client.delete("/internal/files/files/" + "a" * 32 + ".png", headers=alice).status_code
        == 403
    )
    assert stored_file_count(app) == 0


@pytest.mark.parametrize(
    "data", [b"plain text, not a picture", image_bytes("BMP"), image_bytes("PNG")[:40]]
)
def test_files_are_checked_like_images(
    app: Flask, client: FlaskClient, service_headers: dict[str, str], storage_dir: Path, data: bytes
) -> None:
    response = store(client, service_headers, data)
    assert response.status_code == 422
    assert response.json == {"error": NOT_AN_IMAGE, "code": "not_an_image"}
    assert all_files_under(storage_dir) == []
    assert stored_file_count(app) == 0


def test_stored_files_lose_their_metadata(
    client: FlaskClient, service_headers: dict[str, str]
) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    out = io.BytesIO()
    Image.new("RGB", (30, 20)).save(out, "JPEG", exif=exif, comment=b"SECRET")
    body = store(client, service_headers, out.getvalue()).json
    data = client.get(body["url"]).data
    assert b"SecretCam" not in data and b"SECRET" not in data


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"owner": ""}, "owner"),
        ({"owner": "x" * 65}, "owner"),
        ({"owner": "bad\x00owner"}, "owner"),
        ({"owner": "line\n"}, "owner"),
        ({"purpose": "Not Allowed"}, "purpose"),
        ({"purpose": "a" * 33}, "purpose"),
        ({"purpose": "avatar\n"}, "purpose"),
    ],
)
def test_bad_form_fields_are_400(
    app: Flask,
    client: FlaskClient,
    service_headers: dict[str, str],
    form: dict[str, str],
    field: str,
) -> None:
    response = store(client, service_headers, image_bytes(), **form)
    assert response.status_code == 400, response.json
    assert response.json["code"] == "validation_error"
    assert field in response.json["errors"]
    assert stored_file_count(app) == 0


def test_a_missing_owner_or_file_is_400(
    client: FlaskClient, service_headers: dict[str, str]
) -> None:
    no_owner = client.post(
        "/internal/files",
        data=multipart("file", image_bytes()),
        headers=service_headers,
        content_type="multipart/form-data",
    )
    assert no_owner.status_code == 400 and "owner" in no_owner.json["errors"]
    no_file = store(client, service_headers)
    assert no_file.status_code == 400 and "file" in no_file.json["errors"]
    empty = store(client, service_headers, b"")
    assert empty.status_code == 400 and "file" in empty.json["errors"]


def test_a_bomb_is_422_image_too_large(
    client: FlaskClient, service_headers: dict[str, str]
) -> None:
    response = store(client, service_headers, png_declaring(8000, 8000))
    assert response.status_code == 422 and response.json["code"] == "image_too_large"


def test_delete_answers_204_then_the_url_and_a_second_delete_are_404(
    app: Flask, client: FlaskClient, service_headers: dict[str, str], storage_dir: Path
) -> None:
    body = store(client, service_headers, image_bytes()).json
    keep = store(client, service_headers, image_bytes("PNG")).json
    deleted = client.delete(f"/internal/files/{body['key']}", headers=service_headers)
    assert deleted.status_code == 204 and deleted.data == b""
    assert client.get(body["url"]).status_code == 404
    again = client.delete(f"/internal/files/{body['key']}", headers=service_headers)
    assert again.status_code == 404 and again.json["code"] == "not_found"
    assert all_files_under(storage_dir) == [keep["key"]]
    assert stored_file_count(app) == 1
    assert client.get(keep["url"]).status_code == 200


def test_keys_outside_the_file_store_or_malformed_are_404(
    client: FlaskClient, service_headers: dict[str, str], alice: dict[str, str], storage_dir: Path
) -> None:
    image = created(client, alice)
    image_key = key_of(image["url"])
    stored = store(client, service_headers, image_bytes()).json
    for key in (
        image_key,
        key_of(image["thumbnail_url"]),
        "files/unknown.png",
        "files/" + "z" * 32 + ".png",
        "files/" + "z" * 32 + ".png%00",
        "files/%00" + "z" * 31 + ".png",
        "files/" + "z" * 300 + ".png",
        "../" + stored["key"],
        stored["key"] + "/extra",
        "files",
    ):
        response = client.delete(f"/internal/files/{key}", headers=service_headers)
        assert response.status_code == 404, (key, response.status_code)
    assert (storage_dir / image_key).exists()
    assert client.get(stored["url"]).status_code == 200


def test_the_files_url_needs_no_signature_but_an_image_url_does(
    client: FlaskClient, service_headers: dict[str, str], alice: dict[str, str]
) -> None:
    stored = store(client, service_headers, image_bytes()).json
    assert client.get(stored["url"]).status_code == 200
    assert client.get(stored["url"] + "?signature=whatever&expires=1").status_code == 200
    image = created(client, alice)
    assert client.get(media_path(image["url"]).split("?")[0]).status_code == 403


def test_a_text_field_named_file_is_400(
    app: Flask, client: FlaskClient, service_headers: dict[str, str]
) -> None:
    response = client.post(
        "/internal/files",
        data={"owner": "user-42", "file": "not a file"},
        headers=service_headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert set(response.json["errors"]) == {"file"}
    assert stored_file_count(app) == 0


def test_an_unknown_form_field_is_400(
    app: Flask, client: FlaskClient, service_headers: dict[str, str]
) -> None:
    response = store(client, service_headers, image_bytes(), colour="blue")
    assert response.status_code == 400
    assert set(response.json["errors"]) == {"colour"}
    assert stored_file_count(app) == 0


def test_a_service_cannot_delete_another_services_file(
    client: FlaskClient, service_headers: dict[str, str], test_keys: TestKeys, storage_dir: Path
) -> None:
    stored = store(client, service_headers, image_bytes()).json
    events = bearer(test_keys.token(sub="service:events", username="events", role="service"))
    refused = client.delete(f"/internal/files/{stored['key']}", headers=events)
    assert refused.status_code == 404 and refused.json["code"] == "not_found"
    assert (storage_dir / stored["key"]).exists()
    assert client.get(stored["url"]).status_code == 200
    own = client.delete(f"/internal/files/{stored['key']}", headers=service_headers)
    assert own.status_code == 204
