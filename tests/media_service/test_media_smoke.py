"""The image API's happy path, end to end inside the service."""

from __future__ import annotations

from flask.testing import FlaskClient
from media_helpers import image_bytes, media_path, multipart


def test_upload_list_read_replace_delete(client: FlaskClient, alice: dict[str, str]) -> None:
    created = client.post(
        "/images/", data=multipart("image", image_bytes()), headers=alice,
        content_type="multipart/form-data",
    )
    assert created.status_code == 201, created.json
    body = created.json
    assert body["image"] is None and set(body) >= {"id", "url"}
    fetched = client.get(media_path(body["url"]))
    assert fetched.status_code == 200 and fetched.mimetype == "image/jpeg"
    listed = client.get("/images/", headers=alice)
    assert [item["id"] for item in listed.json] == [body["id"]]
    replaced = client.put(
        f"/images/{body['id']}/", data=multipart("image", image_bytes("PNG")), headers=alice,
        content_type="multipart/form-data",
    )
    assert replaced.status_code == 201, replaced.json
    assert client.get(media_path(body["url"])).status_code == 404
    assert client.get(media_path(replaced.json["url"])).mimetype == "image/png"
    assert client.delete(f"/images/{body['id']}/", headers=alice).status_code == 204
    assert client.get(f"/images/{body['id']}/", headers=alice).status_code == 404
    assert client.get(media_path(replaced.json["url"])).status_code == 404
