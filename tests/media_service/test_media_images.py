"""The image API's routes: the document's keys and statuses, pagination, tokens, slashes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from media_service.models import Image, db
from servicekit.db import utcnow
from servicekit.testing import TestKeys
from tests.media_service.media_helpers import (
    all_files_under,
    created,
    decoded,
    image_bytes,
    image_rows,
    key_of,
    media_path,
    send_image,
    usage_of,
)

ANSWER_KEYS = {
    "id", "url", "thumbnail_url", "name", "content_type", "size", "width", "height",
    "expires", "created", "updated",
}  # fmt: skip


def test_upload_answers_201_with_the_documents_keys(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    response = send_image(client, alice, image_bytes("JPEG", (64, 48)), filename="naruto.jpg")
    assert response.status_code == 201
    body = response.json
    assert set(body) == ANSWER_KEYS | {"image"}
    assert body["image"] is None
    assert isinstance(body["id"], int)
    assert body["url"].startswith("http://localhost/media/images/")
    assert body["thumbnail_url"].startswith("http://localhost/media/thumbs/")
    assert body["name"] == "naruto.jpg"
    assert body["content_type"] == "image/jpeg"
    assert (body["width"], body["height"]) == (64, 48)
    fetched = client.get(media_path(body["url"]))
    assert fetched.status_code == 200
    assert body["size"] == len(fetched.data)
    assert decoded(fetched.data).size == (64, 48)
    for moment in ("expires", "created", "updated"):
        assert datetime.fromisoformat(body[moment]).tzinfo is not None


def test_list_is_an_empty_list_when_there_are_no_images(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    response = client.get("/images/", headers=alice)
    assert response.status_code == 200
    assert response.json == []


def test_list_and_read_show_the_image_without_the_upload_only_key(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    body = created(client, alice)
    listed = client.get("/images/", headers=alice)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json] == [body["id"]]
    assert set(listed.json[0]) == ANSWER_KEYS
    read = client.get(f"/images/{body['id']}/", headers=alice)
    assert read.status_code == 200
    assert set(read.json) == ANSWER_KEYS
    assert read.json["id"] == body["id"]
    assert key_of(read.json["url"]) == key_of(body["url"])
    assert client.get(media_path(read.json["url"])).status_code == 200


def test_replace_answers_201_with_new_urls_and_the_old_ones_stop_working(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    body = created(client, alice, image_bytes("JPEG", (64, 48)))
    replaced = send_image(
        client, alice, image_bytes("PNG", (30, 20)), filename="gintama.png", image_id=body["id"]
    )
    assert replaced.status_code == 201
    new = replaced.json
    assert set(new) == ANSWER_KEYS | {"image"} and new["image"] is None
    assert new["id"] == body["id"]
    assert (new["name"], new["content_type"]) == ("gintama.png", "image/png")
    assert (new["width"], new["height"]) == (30, 20)
    assert key_of(new["url"]) != key_of(body["url"])
    assert client.get(media_path(body["url"])).status_code == 404
    assert client.get(media_path(body["thumbnail_url"])).status_code == 404
    served = client.get(media_path(new["url"]))
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert client.get(media_path(new["thumbnail_url"])).status_code == 200
    assert client.get(f"/images/{body['id']}/", headers=alice).json["name"] == "gintama.png"


def test_delete_answers_204_then_the_image_and_its_urls_are_gone(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    body = created(client, alice)
    deleted = client.delete(f"/images/{body['id']}/", headers=alice)
    assert deleted.status_code == 204
    assert deleted.data == b""
    assert client.get(f"/images/{body['id']}/", headers=alice).status_code == 404
    assert client.delete(f"/images/{body['id']}/", headers=alice).status_code == 404
    again = send_image(client, alice, image_bytes(), image_id=body["id"])
    assert again.status_code == 404
    assert client.get(media_path(body["url"])).status_code == 404
    assert client.get(media_path(body["thumbnail_url"])).status_code == 404
    assert client.get("/images/", headers=alice).json == []


@pytest.mark.parametrize("image_id", ["999", "2147483648", "99999999999999999999999"])
def test_unknown_and_out_of_range_ids_are_404(
    client: FlaskClient, alice: dict[str, str], image_id: str
) -> None:
    for method in ("get", "delete"):
        response = getattr(client, method)(f"/images/{image_id}/", headers=alice)
        assert response.status_code == 404, (method, response.json)
        assert response.json["code"] == "not_found"
    replaced = send_image(client, alice, image_bytes(), image_id=image_id)
    assert replaced.status_code == 404


@pytest.mark.parametrize("path", ["/images", "/images/"])
def test_the_list_answers_with_or_without_the_trailing_slash(
    client: FlaskClient, alice: dict[str, str], path: str
) -> None:
    created(client, alice)
    response = client.get(path, headers=alice)
    assert response.status_code == 200 and len(response.json) == 1
    assert send_image(client, alice, image_bytes(), path=path).status_code == 201


@pytest.mark.parametrize("slash", ["", "/"])
def test_one_image_answers_with_or_without_the_trailing_slash(
    client: FlaskClient, alice: dict[str, str], slash: str
) -> None:
    body = created(client, alice)
    path = f"/images/{body['id']}{slash}"
    assert client.get(path, headers=alice).status_code == 200
    replaced = send_image(client, alice, image_bytes("PNG"), image_id=body["id"], path=path)
    assert replaced.status_code == 201
    assert client.delete(path, headers=alice).status_code == 204


# Pagination


def test_list_paginates_in_id_order_with_totals_in_x_pagination(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    empty = client.get("/images/", headers=alice)
    assert json.loads(empty.headers["X-Pagination"]) == {"total": 0, "total_pages": 0}
    ids = [created(client, alice)["id"] for _ in range(5)]
    pages = {"total": 5, "total_pages": 3, "first_page": 1, "last_page": 3}
    first = client.get("/images/?page=1&page_size=2", headers=alice)
    assert first.status_code == 200
    assert [item["id"] for item in first.json] == ids[:2]
    assert json.loads(first.headers["X-Pagination"]) == {**pages, "page": 1, "next_page": 2}
    middle = client.get("/images/?page=2&page_size=2", headers=alice)
    assert json.loads(middle.headers["X-Pagination"]) == {
        **pages, "page": 2, "previous_page": 1, "next_page": 3
    }  # fmt: skip
    last = client.get("/images/?page=3&page_size=2", headers=alice)
    assert [item["id"] for item in last.json] == ids[4:]
    assert json.loads(last.headers["X-Pagination"]) == {**pages, "page": 3, "previous_page": 2}
    everything = client.get("/images/", headers=alice)
    assert [item["id"] for item in everything.json] == ids
    for page in ("9", "1000000"):
        beyond = client.get(f"/images/?page={page}&page_size=1000", headers=alice)
        assert beyond.status_code == 200 and beyond.json == [], page
        assert json.loads(beyond.headers["X-Pagination"]) == {
            "total": 5, "total_pages": 1, "first_page": 1, "last_page": 1
        }  # fmt: skip
    for page in ("1000001", "2147483648", "9223372036854775807", "99999999999999999999999"):
        refused = client.get(f"/images/?page={page}&page_size=2", headers=alice)
        assert refused.status_code == 400, page
        assert refused.json["code"] == "validation_error" and "page" in refused.json["errors"]


def test_the_page_size_is_100_by_default_and_at_most_1000(
    app: Flask, client: FlaskClient, alice: dict[str, str]
) -> None:
    insert_images(app, "id-alice", 101)
    default = client.get("/images/", headers=alice)
    assert len(default.json) == 100
    assert json.loads(default.headers["X-Pagination"])["total"] == 101
    assert len(client.get("/images/?page=2", headers=alice).json) == 1
    assert len(client.get("/images/?page_size=1000", headers=alice).json) == 101
    for query in ("page_size=1001", "page_size=0", "page=0", "page=x", "page_size=-1"):
        response = client.get(f"/images/?{query}", headers=alice)
        assert response.status_code == 400, query
        assert response.json["code"] == "validation_error"


def test_a_page_is_read_with_limit_and_offset_in_sql(
    app: Flask, client: FlaskClient, alice: dict[str, str]
) -> None:
    insert_images(app, "id-alice", 30)
    statements = recorded_statements(app)
    response = client.get("/images/?page=2&page_size=10", headers=alice)
    assert [item["id"] for item in response.json] == list(range(11, 21))
    pages = [sql for sql in statements if "FROM images" in sql and "count(" not in sql.lower()]
    assert len(pages) == 1
    assert "LIMIT" in pages[0] and "OFFSET" in pages[0]


def insert_images(app: Flask, owner: str, count: int) -> None:
    """Image rows straight into the database (their files are not needed to list them)."""
    with app.app_context():
        now = utcnow()
        for number in range(count):
            db.session.add(
                Image(
                    owner=owner, key=f"images/{number:032d}.jpg",
                    thumbnail_key=f"thumbs/{number:032d}.jpg", original_name=f"{number}.jpg",
                    content_type="image/jpeg", size=10, thumbnail_size=5, width=1, height=1,
                    sha256="0" * 64, created_at=now, updated_at=now,
                )
            )  # fmt: skip
        db.session.commit()


def recorded_statements(app: Flask) -> list[str]:
    """The SQL statements the app's engine runs from now on."""
    statements: list[str] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    return statements


# Tokens


def test_no_token_is_401_on_every_route(client: FlaskClient, alice: dict[str, str]) -> None:
    body = created(client, alice)
    calls: list[tuple[str, str]] = [
        ("get", "/images/"), ("post", "/images/"), ("get", f"/images/{body['id']}/"),
        ("put", f"/images/{body['id']}/"), ("delete", f"/images/{body['id']}/"),
    ]  # fmt: skip
    for method, path in calls:
        response = getattr(client, method)(path)
        assert response.status_code == 401, (method, path)
        assert response.json["code"] == "unauthorized"
    assert client.get(f"/images/{body['id']}/", headers=alice).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-jwt", "Token not-a-jwt", "Bearer ", "Basic YWxpY2U6cHc=", "Bearer a.b.c"],
)
def test_a_bad_token_is_401(client: FlaskClient, authorization: str) -> None:
    response = client.get("/images/", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json["code"] == "unauthorized"


def test_expired_or_foreign_tokens_are_401(client: FlaskClient, test_keys: TestKeys) -> None:
    expired = test_keys.token(sub="id-alice", ttl=-3600)
    foreign = TestKeys(kid=test_keys.kid).token(sub="id-alice")
    other_audience = test_keys.token(sub="id-alice", audience="elsewhere")
    for token in (expired, foreign, other_audience):
        response = client.get("/images/", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401


def test_the_image_apis_token_scheme_is_accepted(client: FlaskClient, test_keys: TestKeys) -> None:
    token = test_keys.token(sub="id-carol", username="carol")
    headers = {"Authorization": f"Token {token}"}
    body = created(client, headers)
    listed = client.get("/images/", headers=headers)
    assert listed.status_code == 200 and [item["id"] for item in listed.json] == [body["id"]]
    bearer_listed = client.get("/images/", headers={"Authorization": f"Bearer {token}"})
    assert bearer_listed.json == listed.json


# Ownership


def test_another_users_image_is_404_and_never_listed(
    app: Flask, client: FlaskClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    body = created(client, alice)
    image_id = body["id"]
    assert client.get(f"/images/{image_id}/", headers=bob).status_code == 404
    assert client.delete(f"/images/{image_id}/", headers=bob).status_code == 404
    assert client.get("/images/", headers=bob).json == []
    created(client, bob)
    assert image_id not in [item["id"] for item in client.get("/images/", headers=bob).json]
    assert [row.owner for row in image_rows(app) if row.id == image_id] == ["id-alice"]
    assert client.get(f"/images/{image_id}/", headers=alice).status_code == 200
    assert client.get(media_path(body["url"])).status_code == 200


def test_a_users_token_does_not_unlock_another_users_file_without_the_signature(
    client: FlaskClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    body = created(client, alice)
    bare = media_path(body["url"]).split("?", 1)[0]
    for headers in (bob, alice, {}):
        response = client.get(bare, headers=headers)
        assert response.status_code == 403
        assert response.json["code"] == "invalid_signature"


def test_a_replacement_of_another_users_image_stores_nothing(
    app: Flask,
    client: FlaskClient,
    alice: dict[str, str],
    bob: dict[str, str],
    storage_dir: Path,
) -> None:
    body = created(client, alice)
    files_before = all_files_under(storage_dir)
    usage_before = usage_of(app, "id-alice")
    response = send_image(client, bob, image_bytes("PNG", (40, 40)), image_id=body["id"])
    assert response.status_code == 404
    assert response.json["code"] == "not_found"
    assert all_files_under(storage_dir) == files_before
    assert usage_of(app, "id-alice") == usage_before
    assert usage_of(app, "id-bob") in (None, (0, 0))
    served = client.get(media_path(body["url"]))
    assert served.status_code == 200 and served.mimetype == "image/jpeg"


def test_each_user_lists_only_their_own_images(
    client: FlaskClient, user_headers: Callable[[str], dict[str, str]]
) -> None:
    mine = {name: [created(client, user_headers(name))["id"] for _ in range(3)]
            for name in ("dora", "emil")}  # fmt: skip
    for name, ids in mine.items():
        listed = client.get("/images/", headers=user_headers(name))
        assert [item["id"] for item in listed.json] == ids
