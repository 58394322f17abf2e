"""Signed media URLs, thumbnails, and how files are served (caching, 304, ranges)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from media_service.signing import UrlSigner
from tests.media_service.media_helpers import (
    URL_SECRET,
    created,
    decoded,
    image_bytes,
    key_of,
    media_path,
    multipart,
    noise_png,
)

TTL, WINDOW = 3600, 600  # the defaults


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def signed_path(key: str, expires: int, signature: str | None = None) -> str:
    if signature is None:
        signature = UrlSigner(URL_SECRET.encode(), TTL, WINDOW).signature(key, expires)
    return f"/media/{key}?expires={expires}&signature={signature}"


def test_a_signed_url_serves_the_image_without_a_token(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    body = created(client, alice, image_bytes("PNG", (20, 10), "blue"))
    response = client.get(media_path(body["url"]))
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    picture = decoded(response.data)
    assert picture.size == (20, 10) and picture.convert("RGB").getpixel((5, 5)) == (0, 0, 255)


def test_the_url_carries_an_expiry_rounded_up_to_the_window_and_matching_expires(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    before = time.time()
    body = created(client, alice)
    after = time.time()
    query = query_of(body["url"])
    expires = int(query["expires"])
    assert expires % WINDOW == 0
    assert before + TTL <= expires < after + TTL + WINDOW
    assert datetime.fromisoformat(body["expires"]) == datetime.fromtimestamp(expires, UTC)
    assert query_of(body["thumbnail_url"])["expires"] == query["expires"]
    expected = UrlSigner(URL_SECRET.encode(), TTL, WINDOW).signature(key_of(body["url"]), expires)
    assert query["signature"] == expected


def test_urls_are_the_same_string_within_a_window(
    make_app: Callable[..., Flask], alice: dict[str, str]
) -> None:
    client = make_app(MEDIA_URL_WINDOW=10**9).test_client()  # one window for decades
    body = created(client, alice)
    first = client.get(f"/images/{body['id']}/", headers=alice).json
    second = client.get("/images/", headers=alice).json[0]
    assert first["url"] == second["url"] == body["url"]
    assert first["thumbnail_url"] == second["thumbnail_url"] == body["thumbnail_url"]
    signer = UrlSigner(b"secret", TTL, WINDOW)
    window_start = 1_800_000_000 - 1_800_000_000 % WINDOW
    assert signer.query("images/k.jpg", window_start + 1) == signer.query(
        "images/k.jpg", window_start + WINDOW - 1
    )
    assert signer.query("images/k.jpg", window_start + 1) != signer.query(
        "images/k.jpg", window_start + WINDOW + 1
    )


def test_urls_use_the_public_base_url_or_an_allowed_forwarded_host(
    make_app: Callable[..., Flask], alice: dict[str, str]
) -> None:
    forwarded = {**alice, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "media.example.org"}
    allowed = make_app(MEDIA_ALLOWED_HOSTS="media.example.org").test_client()
    body = created(allowed, forwarded)
    assert body["url"].startswith("https://media.example.org/media/images/")
    configured = make_app(MEDIA_PUBLIC_URL="https://cdn.example.net/").test_client()
    body = created(configured, forwarded)
    assert body["url"].startswith("https://cdn.example.net/media/images/")
    assert body["thumbnail_url"].startswith("https://cdn.example.net/media/thumbs/")


def altered(signature: str) -> str:
    replacement = "A" if signature[0] != "A" else "B"
    return replacement + signature[1:]


def test_a_tampered_or_misplaced_signature_is_403_invalid_signature(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    one = created(client, alice)
    other = created(client, alice)
    key = key_of(one["url"])
    query = query_of(one["url"])
    expires = int(query["expires"])
    other_query = query_of(other["url"])
    bad_paths = [
        signed_path(key, expires, altered(query["signature"])),
        signed_path(key, expires, query["signature"][:-2]),
        # another valid signature, for another key or for the thumbnail
        signed_path(key, expires, other_query["signature"]),
        signed_path(key, expires, query_of(one["thumbnail_url"])["signature"]),
        # the right signature with another expiry
        signed_path(key, expires + WINDOW, query["signature"]),
        # missing parts
        f"/media/{key}",
        f"/media/{key}?expires={expires}",
        f"/media/{key}?signature={query['signature']}",
        f"/media/{key}?expires=&signature={query['signature']}",
        # expiries that are not a plain number
        f"/media/{key}?expires=soon&signature={query['signature']}",
        f"/media/{key}?expires=-1&signature={query['signature']}",
        f"/media/{key}?expires=1e10&signature={query['signature']}",
        f"/media/{key}?expires=%C2%B2&signature={query['signature']}",  # "²", a digit int() refuses
        f"/media/{key}?expires={'9' * 40}&signature={query['signature']}",
    ]
    for path in bad_paths:
        response = client.get(path)
        assert response.status_code == 403, (path, response.status_code)
        assert response.json["code"] == "invalid_signature", path
    assert client.get(media_path(one["url"])).status_code == 200


def test_a_signature_made_with_another_secret_is_refused(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    key = key_of(created(client, alice)["url"])
    expires = int(time.time()) + 60
    forged = UrlSigner(b"another secret", TTL, WINDOW).signature(key, expires)
    response = client.get(signed_path(key, expires, forged))
    assert response.status_code == 403 and response.json["code"] == "invalid_signature"


def test_an_expired_url_is_403_url_expired(client: FlaskClient, alice: dict[str, str]) -> None:
    body = created(client, alice)
    key = key_of(body["url"])
    past = int(time.time()) - 1
    response = client.get(signed_path(key, past))
    assert response.status_code == 403
    assert response.json["code"] == "url_expired"
    assert "expired" in response.json["error"]
    assert client.get(signed_path(key, int(time.time()) + 120)).status_code == 200


def test_urls_of_an_app_with_a_tiny_ttl_expire(
    make_app: Callable[..., Flask], alice: dict[str, str]
) -> None:
    client = make_app(MEDIA_URL_TTL=1, MEDIA_URL_WINDOW=1).test_client()
    body = created(client, alice)
    expires = int(query_of(body["url"])["expires"])
    while time.time() <= expires:
        time.sleep(0.05)
    response = client.get(media_path(body["url"]))
    assert response.status_code == 403 and response.json["code"] == "url_expired"
    fresh = client.get(f"/images/{body['id']}/", headers=alice).json
    assert int(query_of(fresh["url"])["expires"]) > expires


@pytest.mark.parametrize(
    "key",
    [
        "images/short.jpg",
        "images/../images/abcdefghijklmnopqrstuvwxyz012345.jpg",
        "images/abcdefghijklmnopqrstuvwxyz012345.exe",
        "other/abcdefghijklmnopqrstuvwxyz012345.jpg",
        ".incoming/abcdefghijklmnopqrstuvwxyz012345.jpg",
    ],
)
def test_malformed_keys_are_404(client: FlaskClient, key: str) -> None:
    response = client.get(signed_path(key, int(time.time()) + 60))
    assert response.status_code == 404
    assert response.json["code"] == "not_found"


def test_an_unknown_key_with_a_valid_signature_is_404(client: FlaskClient) -> None:
    key = "images/abcdefghijklmnopqrstuvwxyz012345.jpg"
    response = client.get(signed_path(key, int(time.time()) + 60))
    assert response.status_code == 404


# Thumbnails


def test_the_thumbnail_fits_the_configured_size(
    make_app: Callable[..., Flask], alice: dict[str, str]
) -> None:
    client = make_app(MEDIA_THUMBNAIL_SIZE=64).test_client()
    body = created(client, alice, noise_png((300, 120)))
    response = client.get(media_path(body["thumbnail_url"]))
    assert response.status_code == 200 and response.mimetype == "image/png"
    thumbnail = decoded(response.data)
    assert max(thumbnail.size) == 64
    assert thumbnail.size == (64, 26)  # aspect kept: 300x120 scaled by 64/300
    full = decoded(client.get(media_path(body["url"])).data)
    assert full.size == (300, 120)


def test_a_small_image_is_not_enlarged_for_its_thumbnail(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    body = created(client, alice, image_bytes("JPEG", (40, 30)))
    thumbnail = decoded(client.get(media_path(body["thumbnail_url"])).data)
    assert thumbnail.size == (40, 30)
    assert thumbnail.format == "JPEG"


@pytest.mark.parametrize(
    ("image_format", "thumbnail_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/png"), ("WEBP", "image/webp")],
)
def test_thumbnails_of_each_format(
    client: FlaskClient, alice: dict[str, str], image_format: str, thumbnail_type: str
) -> None:
    body = created(client, alice, image_bytes(image_format, (600, 300)))
    response = client.get(media_path(body["thumbnail_url"]))
    assert response.status_code == 200 and response.mimetype == thumbnail_type
    assert decoded(response.data).size == (256, 128)


# Caching, conditional requests and ranges


def test_signed_files_are_privately_cacheable_until_the_url_expires(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    body = created(client, alice)
    response = client.get(media_path(body["url"]))
    cache = response.cache_control
    assert cache.private and not cache.public and cache.immutable
    assert cache.max_age is not None and 0 < cache.max_age <= TTL + WINDOW
    assert response.headers["ETag"] == f'"{key_of(body["url"]).split("/")[1].split(".")[0]}"'
    assert response.last_modified is not None
    assert response.headers["Accept-Ranges"] == "bytes"
    assert int(response.headers["Content-Length"]) == body["size"] == len(response.data)


def test_if_none_match_answers_304(client: FlaskClient, alice: dict[str, str]) -> None:
    path = media_path(created(client, alice)["url"])
    etag = client.get(path).headers["ETag"]
    response = client.get(path, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag
    assert response.cache_control.private
    other = client.get(path, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.data


def test_if_modified_since_answers_304(client: FlaskClient, alice: dict[str, str]) -> None:
    path = media_path(created(client, alice)["url"])
    last_modified = client.get(path).headers["Last-Modified"]
    response = client.get(path, headers={"If-Modified-Since": last_modified})
    assert response.status_code == 304 and response.data == b""
    long_ago = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    assert client.get(path, headers={"If-Modified-Since": long_ago}).status_code == 200


def test_a_conditional_request_still_needs_a_valid_signature(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    url = created(client, alice)["url"]
    etag = client.get(media_path(url)).headers["ETag"]
    bare = media_path(url).split("?", 1)[0]
    response = client.get(bare, headers={"If-None-Match": etag})
    assert response.status_code == 403


def test_a_byte_range_answers_206_with_exactly_those_bytes(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    path = media_path(created(client, alice, noise_png((50, 50)))["url"])
    whole = client.get(path).data
    response = client.get(path, headers={"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 0-9/{len(whole)}"
    assert response.data == whole[:10] and len(response.data) == 10
    tail = client.get(path, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.data == whole[-5:]
    middle = client.get(path, headers={"Range": "bytes=100-"})
    assert middle.status_code == 206 and middle.data == whole[100:]


def test_an_unsatisfiable_range_answers_416(client: FlaskClient, alice: dict[str, str]) -> None:
    body = created(client, alice)
    path = media_path(body["url"])
    response = client.get(path, headers={"Range": f"bytes={body['size'] + 10}-"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{body['size']}"
    assert response.is_json and response.json["code"] == "requested_range_not_satisfiable"


@pytest.mark.parametrize("header", ["items=0-1", "bytes=0-1,5-9", "bytes=0-1, 100-"])
def test_ranges_of_another_unit_or_several_ranges_are_ignored(
    client: FlaskClient, alice: dict[str, str], header: str
) -> None:
    path = media_path(created(client, alice, noise_png((50, 50)))["url"])
    whole = client.get(path).data
    response = client.get(path, headers={"Range": header})
    assert response.status_code == 200
    assert response.data == whole and "Content-Range" not in response.headers


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=9-2"])
def test_a_malformed_byte_range_answers_416(
    client: FlaskClient, alice: dict[str, str], header: str
) -> None:
    path = media_path(created(client, alice)["url"])
    assert client.get(path, headers={"Range": header}).status_code == 416


def test_a_range_with_a_stale_if_range_answers_the_whole_file(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    path = media_path(created(client, alice)["url"])
    whole = client.get(path).data
    response = client.get(path, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert response.status_code == 200 and response.data == whole


def test_head_answers_the_headers_without_the_body(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    body = created(client, alice)
    response = client.head(media_path(body["url"]))
    assert response.status_code == 200
    assert response.data == b""
    assert int(response.headers["Content-Length"]) == body["size"]


def test_public_files_are_publicly_cacheable_for_a_year(
    client: FlaskClient, service_headers: dict[str, str]
) -> None:
    stored = client.post(
        "/internal/files",
        data={**multipart("file", image_bytes("PNG")), "owner": "u1"},
        headers=service_headers,
        content_type="multipart/form-data",
    )
    assert stored.status_code == 201, stored.json
    response = client.get(stored.json["url"])
    assert response.status_code == 200
    cache = response.cache_control
    assert cache.public and not cache.private and cache.immutable
    assert cache.max_age == 365 * 24 * 3600
    etag = response.headers["ETag"]
    assert client.get(stored.json["url"], headers={"If-None-Match": etag}).status_code == 304


def test_a_failed_if_match_answers_412_without_the_file(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    path = media_path(created(client, alice)["url"])
    etag = client.get(path).headers["ETag"]
    refused = client.get(path, headers={"If-Match": '"another-version"'})
    assert refused.status_code == 412
    assert refused.data == b""
    assert refused.headers["Content-Length"] == "0"
    matched = client.get(path, headers={"If-Match": etag})
    assert matched.status_code == 200 and matched.data
