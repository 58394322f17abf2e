"""Per-user quotas: images and bytes, kept exact by replacements, deletions and
simultaneous uploads (on a real threaded server)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from flask import Flask

from servicekit.testing import serve_wsgi
from tests.media_service.media_helpers import (
    all_files_under,
    created,
    image_bytes,
    image_rows,
    media_path,
    noise_png,
    send_image,
    stored_files,
    usage_of,
)


def stored_bytes_on_disk(storage_dir: Path) -> int:
    return sum(path.stat().st_size for path in storage_dir.rglob("*") if path.is_file())


def rows_bytes(app: Flask, owner: str) -> int:
    return sum(row.size + row.thumbnail_size for row in image_rows(app, owner))


def test_the_image_count_limit_is_409_with_a_clear_message(
    make_app: Callable[..., Flask],
    alice: dict[str, str],
    bob: dict[str, str],
    storage_dir: Path,
) -> None:
    app = make_app(MEDIA_QUOTA_IMAGES=2)
    client = app.test_client()
    first = created(client, alice)
    created(client, alice)
    files = all_files_under(storage_dir)
    refused = send_image(client, alice, image_bytes())
    assert refused.status_code == 409
    assert refused.json == {
        "error": "image limit reached: you have 2 of at most 2 images",
        "code": "quota_exceeded",
    }
    assert all_files_under(storage_dir) == files
    assert usage_of(app, "id-alice") == (rows_bytes(app, "id-alice"), 2)
    assert send_image(client, bob, image_bytes()).status_code == 201  # a quota per user
    assert client.delete(f"/images/{first['id']}/", headers=alice).status_code == 204
    assert send_image(client, alice, image_bytes()).status_code == 201


def test_the_byte_limit_is_413_and_counts_image_and_thumbnail(
    make_app: Callable[..., Flask], alice: dict[str, str], storage_dir: Path
) -> None:
    app = make_app(MEDIA_QUOTA_BYTES=30_000)
    client = app.test_client()
    small = created(client, alice, image_bytes("PNG", (20, 20)))
    used = usage_of(app, "id-alice")
    assert used is not None and used[0] == rows_bytes(app, "id-alice")
    assert used[0] > small["size"]  # the thumbnail counts too
    assert used[0] == stored_bytes_on_disk(storage_dir)
    files = all_files_under(storage_dir)
    big = noise_png((90, 90))  # about 24 KB, and as much again for its thumbnail
    refused = send_image(client, alice, big)
    assert refused.status_code == 413
    assert refused.json["code"] == "quota_exceeded"
    assert refused.json["error"] == f"storage quota exceeded: {used[0]} of 30000 bytes used"
    assert all_files_under(storage_dir) == files
    assert usage_of(app, "id-alice") == used
    assert [row.id for row in image_rows(app)] == [small["id"]]


def test_a_replacement_that_grows_over_the_quota_is_413_and_keeps_the_old_picture(
    make_app: Callable[..., Flask], alice: dict[str, str], storage_dir: Path
) -> None:
    app = make_app(MEDIA_QUOTA_BYTES=30_000)
    client = app.test_client()
    body = created(client, alice, image_bytes("PNG", (20, 20), "green"))
    before = client.get(media_path(body["url"])).data
    usage = usage_of(app, "id-alice")
    files = all_files_under(storage_dir)
    refused = send_image(client, alice, noise_png((90, 90)), image_id=body["id"])
    assert refused.status_code == 413 and refused.json["code"] == "quota_exceeded"
    assert usage_of(app, "id-alice") == usage
    assert all_files_under(storage_dir) == files
    served = client.get(media_path(body["url"]))
    assert served.status_code == 200 and served.data == before
    assert client.get(f"/images/{body['id']}/", headers=alice).json["size"] == body["size"]


def test_a_replacement_counts_only_the_difference(
    make_app: Callable[..., Flask], alice: dict[str, str]
) -> None:
    big = noise_png((50, 50), seed=1)
    app = make_app(MEDIA_QUOTA_BYTES=2 * len(big) + 6000, MEDIA_QUOTA_IMAGES=1)
    client = app.test_client()
    body = created(client, alice, big)
    # as big again: fits only if the old picture's bytes are given back
    replaced = send_image(client, alice, noise_png((50, 50), seed=2), image_id=body["id"])
    assert replaced.status_code == 201, replaced.json
    assert usage_of(app, "id-alice") == (rows_bytes(app, "id-alice"), 1)
    smaller = send_image(client, alice, image_bytes("PNG", (5, 5)), image_id=body["id"])
    assert smaller.status_code == 201
    assert usage_of(app, "id-alice") == (rows_bytes(app, "id-alice"), 1)


def test_deleting_gives_the_quota_back(
    app: Flask, alice: dict[str, str], storage_dir: Path
) -> None:
    client = app.test_client()
    ids = [created(client, alice, noise_png((20, 20), seed=n))["id"] for n in range(3)]
    assert usage_of(app, "id-alice") == (stored_bytes_on_disk(storage_dir), 3)
    for image_id in ids:
        assert client.delete(f"/images/{image_id}/", headers=alice).status_code == 204
    assert usage_of(app, "id-alice") == (0, 0)
    assert stored_bytes_on_disk(storage_dir) == 0


def test_simultaneous_uploads_never_exceed_the_image_quota(
    make_app: Callable[..., Flask], alice: dict[str, str], storage_dir: Path
) -> None:
    app = make_app(MEDIA_QUOTA_IMAGES=3)
    uploads = 8
    start = threading.Barrier(uploads)
    statuses: list[int] = []
    bodies: list[dict[str, Any]] = []

    def upload(number: int, base: str) -> None:
        data = noise_png((40, 40), seed=number)
        start.wait(timeout=30)
        response = requests.post(
            f"{base}/images/",
            files={"image": (f"{number}.png", data, "image/png")},
            headers=alice,
            timeout=60,
        )
        statuses.append(response.status_code)
        bodies.append(response.json())

    with serve_wsgi(app) as base:
        threads = [threading.Thread(target=upload, args=(n, base)) for n in range(uploads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        listed = requests.get(f"{base}/images/", headers=alice, timeout=30).json()

    assert Counter(statuses) == {201: 3, 409: 5}, bodies
    refusals = [body for body in bodies if body.get("code") == "quota_exceeded"]
    assert len(refusals) == 5
    accepted = sorted(body["id"] for body in bodies if "id" in body)
    assert sorted(item["id"] for item in listed) == accepted
    files = stored_files(storage_dir)
    assert len(files["images"]) == 3 and len(files["thumbs"]) == 3
    assert files[".incoming"] == []
    rows = image_rows(app, "id-alice")
    assert len(rows) == 3
    assert {row.key.split("/")[1] for row in rows} == set(files["images"])
    assert usage_of(app, "id-alice") == (rows_bytes(app, "id-alice"), 3)
    assert rows_bytes(app, "id-alice") == stored_bytes_on_disk(storage_dir)


def test_simultaneous_uploads_never_exceed_the_byte_quota(
    make_app: Callable[..., Flask], alice: dict[str, str], storage_dir: Path
) -> None:
    one = noise_png((40, 40), seed=0)
    # room for two of these pictures and their thumbnails, not three
    app = make_app(MEDIA_QUOTA_BYTES=int(2.5 * 2 * len(one)))
    uploads = 6
    start = threading.Barrier(uploads)
    statuses: list[int] = []

    def upload(base: str) -> None:
        start.wait(timeout=30)
        response = requests.post(
            f"{base}/images/", files={"image": ("a.png", one)}, headers=alice, timeout=60
        )
        statuses.append(response.status_code)

    with serve_wsgi(app) as base:
        threads = [threading.Thread(target=upload, args=(base,)) for _ in range(uploads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    assert Counter(statuses) == {201: 2, 413: 4}
    usage = usage_of(app, "id-alice")
    assert usage == (rows_bytes(app, "id-alice"), 2)
    assert usage[0] == stored_bytes_on_disk(storage_dir)


def test_simultaneous_replacements_and_a_deletion_leave_no_orphan(
    app: Flask, alice: dict[str, str], storage_dir: Path
) -> None:
    client = app.test_client()
    body = created(client, alice)
    path = f"/images/{body['id']}/"
    callers = 6
    start = threading.Barrier(callers)
    statuses: list[tuple[str, int]] = []

    def replace(number: int, base: str) -> None:
        data = noise_png((30, 30), seed=number)
        start.wait(timeout=30)
        response = requests.put(
            f"{base}{path}", files={"image": ("b.png", data)}, headers=alice, timeout=60
        )
        statuses.append(("put", response.status_code))

    def delete(base: str) -> None:
        start.wait(timeout=30)
        response = requests.delete(f"{base}{path}", headers=alice, timeout=60)
        statuses.append(("delete", response.status_code))

    with serve_wsgi(app) as base:
        threads = [threading.Thread(target=replace, args=(n, base)) for n in range(callers - 1)]
        threads.append(threading.Thread(target=delete, args=(base,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    assert ("delete", 204) in statuses
    assert {status for method, status in statuses if method == "put"} <= {201, 404}
    # the deletion won in the end: nothing of the image is left, whatever ran before it
    assert image_rows(app) == []
    assert all_files_under(storage_dir) == []
    assert usage_of(app, "id-alice") == (0, 0)


def test_simultaneous_replacements_keep_exactly_the_last_pictures_files(
    app: Flask, alice: dict[str, str], storage_dir: Path
) -> None:
    client = app.test_client()
    body = created(client, alice)
    callers = 6
    start = threading.Barrier(callers)
    statuses: list[int] = []

    def replace(number: int, base: str) -> None:
        data = noise_png((30 + number, 30), seed=number)
        start.wait(timeout=30)
        response = requests.put(
            f"{base}/images/{body['id']}/",
            files={"image": ("b.png", data)},
            headers=alice,
            timeout=60,
        )
        statuses.append(response.status_code)

    with serve_wsgi(app) as base:
        threads = [threading.Thread(target=replace, args=(n, base)) for n in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    assert statuses == [201] * callers
    (row,) = image_rows(app)
    assert all_files_under(storage_dir) == sorted([row.key, row.thumbnail_key])
    assert usage_of(app, "id-alice") == (row.size + row.thumbnail_size, 1)
    assert stored_bytes_on_disk(storage_dir) == row.size + row.thumbnail_size
