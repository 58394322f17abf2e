"""Stored files: random keys, no orphans after failures, replacements and deletions, and
the sweep command for what a crash leaves behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from media_service.storage import KEY_PATTERN
from tests.media_service.media_helpers import (
    all_files_under,
    created,
    image_bytes,
    image_rows,
    key_of,
    media_path,
    multipart,
    send_image,
    stored_files,
)

PLANTED = "images/" + "o" * 32 + ".jpg"


def keys_of(body: dict[str, str]) -> list[str]:
    return [key_of(body["url"]), key_of(body["thumbnail_url"])]


def test_an_upload_stores_one_image_and_one_thumbnail_under_random_keys(
    app: Flask, client: FlaskClient, alice: dict[str, str], storage_dir: Path
) -> None:
    body = created(client, alice)
    image_key, thumbnail_key = keys_of(body)
    assert KEY_PATTERN.match(image_key) and image_key.startswith("images/")
    assert KEY_PATTERN.match(thumbnail_key) and thumbnail_key.startswith("thumbs/")
    assert all_files_under(storage_dir) == sorted([image_key, thumbnail_key])
    assert (storage_dir / image_key).read_bytes() == client.get(media_path(body["url"])).data
    row = image_rows(app)[0]
    assert (row.key, row.thumbnail_key) == (image_key, thumbnail_key)
    second = created(client, alice)
    assert not set(keys_of(second)) & set(keys_of(body))


@pytest.mark.parametrize(
    ("filename", "shown"),
    [
        ("../../etc/passwd.jpg", "passwd.jpg"),
        ("a b/ü.png", "ü.png"),
        ("/absolute/path.jpg", "path.jpg"),
        ("tab\tand\x7fdel.jpg", "tabanddel.jpg"),
    ],
)
def test_the_clients_file_name_is_only_shown_never_used_in_a_key(
    client: FlaskClient,
    alice: dict[str, str],
    storage_dir: Path,
    tmp_path: Path,
    filename: str,
    shown: str,
) -> None:
    response = send_image(client, alice, image_bytes(), filename=filename)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["name"] == shown
    for key in keys_of(body):
        assert KEY_PATTERN.match(key)
        assert shown.rsplit(".", 1)[0] not in key
    assert len(all_files_under(storage_dir)) == 2
    # nothing was written beside the storage folder (the test's database aside)
    assert [name for name in os.listdir(tmp_path) if not name.startswith("media")] == []
    listed = client.get("/images/", headers=alice).json
    assert listed[0]["name"] == shown


def test_a_long_file_name_is_shortened_for_display(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    response = send_image(client, alice, image_bytes(), filename="x" * 300 + ".jpg")
    assert response.status_code == 201
    assert response.json["name"] == "x" * 255


def test_a_failed_upload_leaves_no_file(
    make_app: Callable[..., Flask], alice: dict[str, str], storage_dir: Path
) -> None:
    client = make_app(MEDIA_QUOTA_IMAGES=1).test_client()
    created(client, alice)
    files = all_files_under(storage_dir)
    assert send_image(client, alice, image_bytes()).status_code == 409
    assert send_image(client, alice, b"not an image").status_code == 422
    assert all_files_under(storage_dir) == files
    assert stored_files(storage_dir)[".incoming"] == []


def test_a_replacement_removes_the_old_files(
    client: FlaskClient, alice: dict[str, str], storage_dir: Path
) -> None:
    body = created(client, alice)
    replaced = send_image(client, alice, image_bytes("PNG"), image_id=body["id"]).json
    assert all_files_under(storage_dir) == sorted(keys_of(replaced))
    for key in keys_of(body):
        assert not (storage_dir / key).exists()


def test_a_deletion_removes_the_files(
    client: FlaskClient, alice: dict[str, str], storage_dir: Path
) -> None:
    keep = created(client, alice)
    body = created(client, alice)
    assert client.delete(f"/images/{body['id']}/", headers=alice).status_code == 204
    assert all_files_under(storage_dir) == sorted(keys_of(keep))


def age(path: Path, seconds: float) -> None:
    """Make a file look `seconds` old."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def plant(storage_dir: Path, key: str, seconds_old: float = 0) -> Path:
    path = storage_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes())
    age(path, seconds_old)
    return path


def test_sweep_removes_orphans_and_stale_temporaries_and_keeps_referenced_files(
    app: Flask,
    client: FlaskClient,
    alice: dict[str, str],
    service_headers: dict[str, str],
    storage_dir: Path,
) -> None:
    body = created(client, alice)
    stored = client.post(
        "/internal/files",
        data={**multipart("file", image_bytes("PNG")), "owner": "u1"},
        headers=service_headers,
        content_type="multipart/form-data",
    ).json
    referenced = [*keys_of(body), stored["key"]]
    for key in referenced:
        age(storage_dir / key, 3600 * 24)
    orphans = [
        plant(storage_dir, PLANTED),
        plant(storage_dir, "thumbs/" + "t" * 32 + ".png"),
        plant(storage_dir, "files/" + "f" * 32 + ".gif"),
    ]
    temporary = storage_dir / ".incoming" / "upload.part"
    temporary.write_bytes(b"half a picture")
    stranger = plant(storage_dir, "images/not-a-key.txt")  # not ours to judge: left alone

    result = app.test_cli_runner().invoke(args=["sweep", "--grace-minutes", "0"])
    assert result.exit_code == 0, result.output
    assert "removed 4 orphaned file(s)" in result.output
    assert not any(path.exists() for path in orphans)
    assert not temporary.exists()
    assert stranger.exists()
    for key in referenced:
        assert (storage_dir / key).exists()
    assert client.get(media_path(body["url"])).status_code == 200
    assert client.get(stored["url"]).status_code == 200


def test_sweep_leaves_recent_files_alone_by_default(app: Flask, storage_dir: Path) -> None:
    recent = plant(storage_dir, PLANTED, seconds_old=60)
    old = plant(storage_dir, "images/" + "p" * 32 + ".jpg", seconds_old=2 * 3600)
    result = app.test_cli_runner().invoke(args=["sweep"])
    assert result.exit_code == 0, result.output
    assert "removed 1 orphaned file(s)" in result.output
    assert recent.exists() and not old.exists()


def test_sweep_of_an_empty_store(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["sweep", "--grace-minutes", "0"])
    assert result.exit_code == 0 and "removed 0 orphaned file(s)" in result.output


def test_sweep_handles_more_files_than_one_batch(app: Flask, storage_dir: Path) -> None:
    for number in range(1200):
        plant(storage_dir, f"images/{number:032d}.png", seconds_old=7200)
    result = app.test_cli_runner().invoke(args=["sweep", "--grace-minutes", "0"])
    assert "removed 1200 orphaned file(s)" in result.output
    assert stored_files(storage_dir)["images"] == []


def test_control_bytes_in_a_raw_file_name_are_dropped_from_the_display_name(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="image"; filename="nul\x00\x01name.jpg"\r\n'
        + b"Content-Type: image/jpeg\r\n\r\n"
        + image_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(
        "/images/",
        data=body,
        headers=alice,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 201, response.json
    assert response.json["name"] == "nulname.jpg"
    assert client.get("/images/", headers=alice).json[0]["name"] == "nulname.jpg"
