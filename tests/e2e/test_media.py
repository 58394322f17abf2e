"""The image API through the gateway, as the document's client uses it: register, upload,
list, read, replace, delete, tokens; the signed URLs an `<img src>` fetches; and a 40 MB
upload with the memory of the media service and the gateway bounded."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from PIL import Image

from devstack.stack import RunningStack
from tests.e2e.e2e_helpers import PASSWORD, TIMEOUT, bearer, e2e_stack
from tests.e2e.media_e2e_helpers import (
    MIB,
    decoded,
    noise_png,
    photo,
    register,
    restart_peak,
    send_file,
    send_image,
    status_kib,
    token_header,
    worker_pids,
)

STORED_KEYS = {
    "id", "image", "url", "thumbnail_url", "name", "content_type", "size",
    "width", "height", "expires", "created", "updated",
}  # fmt: skip
NOT_AN_IMAGE = "Only image type data allowed"


def get(
    url: str, token: str | None = None, headers: dict[str, str] | None = None
) -> requests.Response:
    sent = {**(token_header(token) if token else {}), **(headers or {})}
    return requests.get(url, headers=sent, timeout=TIMEOUT)


def uploaded(gateway_url: str, token: str, picture: bytes, **options: Any) -> dict[str, Any]:
    response = send_image(gateway_url, token, picture, **options)
    assert response.status_code == 201, response.text
    return dict(response.json())


def with_query(url: str, **query: str) -> str:
    """The URL with its query replaced (no query at all when none is given)."""
    return urlunsplit(urlsplit(url)._replace(query=urlencode(query)))


def signed_query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


# What an outside review sent as Host: markup, and a host that makes the rest of the URL
# a path and a query of another site.
HOSTILE_HOSTS = ('127.0.0.1:8000"><script>', "evil.example:1/x?#")


def hostile_host_headers() -> list[dict[str, str]]:
    """The hostile hosts as the client's Host, and as an X-Forwarded-Host the gateway must
    not pass on."""
    return [{name: host} for host in HOSTILE_HOSTS for name in ("Host", "X-Forwarded-Host")]


def assert_not_reflected(response: requests.Response) -> None:
    for mark in ("<script>", '">', "evil.example"):
        assert mark not in response.text


def altered(text: str) -> str:
    """The same string with its last character changed."""
    return text[:-1] + ("A" if text[-1] != "A" else "B")


# The document's flow


def test_the_documents_image_flow(gateway_url: str) -> None:
    _, token = register(gateway_url)

    created = send_image(gateway_url, token, photo((320, 240), "orange"), filename="naruto.jpg")
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == STORED_KEYS
    assert body["image"] is None and isinstance(body["id"], int)
    image_id, url = body["id"], body["url"]

    listed = get(f"{gateway_url}/images/", token)
    assert listed.status_code == 200, listed.text
    assert [(item["id"], urlsplit(item["url"]).path) for item in listed.json()] == [
        (image_id, urlsplit(url).path)
    ]
    one = get(f"{gateway_url}/images/{image_id}/", token)
    assert one.status_code == 200
    assert one.json()["id"] == image_id
    assert urlsplit(one.json()["url"]).path == urlsplit(url).path
    assert decoded(get(url).content).size == (320, 240)

    replaced = send_image(
        gateway_url,
        token,
        photo((200, 100), "blue", "PNG"),
        image_id=image_id,
        filename="Gintama.png",
        content_type="image/png",
    )
    assert replaced.status_code == 201, replaced.text
    new = replaced.json()
    assert (new["id"], new["image"], new["name"]) == (image_id, None, "Gintama.png")
    assert urlsplit(new["url"]).path != urlsplit(url).path
    picture = get(new["url"])
    assert picture.status_code == 200
    assert picture.headers["Content-Type"] == "image/png"
    assert decoded(picture.content).format == "PNG"
    assert decoded(picture.content).size == (200, 100)
    assert get(url).status_code == 404
    assert get(body["thumbnail_url"]).status_code == 404

    deleted = requests.delete(
        f"{gateway_url}/images/{image_id}/", headers=token_header(token), timeout=TIMEOUT
    )
    assert deleted.status_code == 204 and deleted.content == b""
    assert get(f"{gateway_url}/images/{image_id}/", token).status_code == 404
    assert get(new["url"]).status_code == 404
    assert get(new["thumbnail_url"]).status_code == 404
    assert get(f"{gateway_url}/images/", token).json() == []


def test_regenerating_the_token_revokes_the_old_one(gateway_url: str) -> None:
    username, token = register(gateway_url)
    image = uploaded(gateway_url, token, photo())
    session = requests.post(
        f"{gateway_url}/auth/token/",
        json={"username": username, "password": PASSWORD},
        timeout=TIMEOUT,
    ).json()["access"]

    regenerated = get(f"{gateway_url}/regenerateToken/", token)

    assert regenerated.status_code == 200, regenerated.text
    assert set(regenerated.json()) == {"token"}
    fresh = regenerated.json()["token"]
    assert fresh != token
    mine = get(f"{gateway_url}/images/{image['id']}/", fresh)
    assert mine.status_code == 200 and mine.json()["id"] == image["id"]
    # Every earlier API token of the user is revoked at once, at the gateway.
    refused = get(f"{gateway_url}/images/", token)
    assert refused.status_code == 401
    assert refused.json() == {"error": "token revoked", "code": "unauthorized"}
    # The user's ordinary sign-in session is not an API token and keeps working.
    assert (
        requests.get(f"{gateway_url}/images/", headers=bearer(session), timeout=TIMEOUT).status_code
        == 200
    )


def test_api_token_auth_gives_a_working_token(gateway_url: str) -> None:
    username, token = register(gateway_url)
    image = uploaded(gateway_url, token, photo())

    obtained = requests.post(
        f"{gateway_url}/api-token-auth/",
        json={"username": username, "password": PASSWORD},
        timeout=TIMEOUT,
    )
    refused = requests.post(
        f"{gateway_url}/api-token-auth/",
        json={"username": username, "password": PASSWORD + "!"},
        timeout=TIMEOUT,
    )

    assert obtained.status_code == 200, obtained.text
    assert set(obtained.json()) == {"token"}
    other_token = obtained.json()["token"]
    listed = get(f"{gateway_url}/images/", other_token)
    assert [item["id"] for item in listed.json()] == [image["id"]]
    # Obtaining another token leaves the first one working (up to ten live ones).
    assert get(f"{gateway_url}/images/", token).status_code == 200
    assert refused.status_code == 400


# Signed URLs, as an <img src> fetches them


def test_the_url_is_absolute_at_the_gateway_and_serves_without_a_token(
    gateway_url: str,
) -> None:
    # The client reaches the gateway by another name: the URLs it gets back still name
    # MEDIA_PUBLIC_URL (the stack's gateway URL), never the Host the client sent.
    port = urlsplit(gateway_url).port
    gateway_by_name = f"http://localhost:{port}"
    _, token = register(gateway_by_name)
    body = uploaded(gateway_by_name, token, photo((640, 480), "green"))
    url = urlsplit(body["url"])
    assert (url.scheme, url.netloc) == ("http", f"127.0.0.1:{port}")
    assert urlsplit(body["thumbnail_url"]).netloc == f"127.0.0.1:{port}"
    assert url.path.startswith("/media/images/") and url.path.endswith(".jpg")
    assert set(signed_query(body["url"])) == {"expires", "signature"}

    picture = requests.get(body["url"], timeout=TIMEOUT)

    assert picture.status_code == 200
    assert "Authorization" not in picture.request.headers
    assert picture.headers["Content-Type"] == "image/jpeg"
    assert int(picture.headers["Content-Length"]) == body["size"] == len(picture.content)
    assert decoded(picture.content).size == (640, 480)
    assert picture.headers["ETag"].strip('"') in url.path
    assert picture.headers["Last-Modified"]
    cache_control = picture.headers["Cache-Control"]
    assert "private" in cache_control and "max-age=" in cache_control
    assert picture.headers["X-Content-Type-Options"] == "nosniff"
    thumbnail = requests.get(body["thumbnail_url"], timeout=TIMEOUT)
    assert thumbnail.status_code == 200
    assert max(decoded(thumbnail.content).size) <= 256


def test_a_hostile_host_never_reaches_the_urls(gateway_url: str) -> None:
    _, token = register(gateway_url)
    for headers in hostile_host_headers():
        response = send_image(gateway_url, token, photo(), headers=headers)
        assert response.status_code == 201, response.text
        assert_not_reflected(response)
        assert urlsplit(response.json()["url"]).netloc == urlsplit(gateway_url).netloc
        image_id = response.json()["id"]
        for path in ("/images/", f"/images/{image_id}/"):
            listed = get(f"{gateway_url}{path}", token, headers)
            assert listed.status_code == 200
            assert_not_reflected(listed)


@pytest.fixture
def allow_listed_stack(stack: RunningStack, tmp_path: Path) -> Iterator[RunningStack]:
    """auth, media and the gateway of their own, without MEDIA_PUBLIC_URL: the URLs name
    the host the client used when MEDIA_ALLOWED_HOSTS admits it."""
    with e2e_stack(
        tmp_path / "stack",
        ("auth", "media", "gateway"),
        label="e2e_hosts",
        redis_url=stack.environment["REDIS_URL"],
        settings={"MEDIA_PUBLIC_URL": "", "MEDIA_ALLOWED_HOSTS": "localhost"},
    ) as started:
        yield started


def test_without_a_public_url_only_an_allowed_host_names_the_urls(
    allow_listed_stack: RunningStack,
) -> None:
    gateway_url = allow_listed_stack.url("gateway")
    port = urlsplit(gateway_url).port
    by_name = f"http://localhost:{port}"
    _, token = register(by_name)
    body = uploaded(by_name, token, photo())
    assert urlsplit(body["url"]).netloc == urlsplit(body["thumbnail_url"]).netloc
    assert urlsplit(body["url"]).netloc == f"localhost:{port}"
    assert get(body["url"]).status_code == 200

    by_address = send_image(gateway_url, token, photo())  # Host: 127.0.0.1, not listed
    assert by_address.status_code == 400
    assert by_address.json() == {
        "error": "the request's host is not one this service builds URLs for",
        "code": "bad_host",
    }
    stored = [body["id"]]
    for headers in hostile_host_headers():
        response = send_image(by_name, token, photo(), headers=headers)
        assert_not_reflected(response)
        if "Host" in headers:
            assert response.status_code == 400 and response.json()["code"] == "bad_host"
        else:  # the gateway drops a client's X-Forwarded-Host
            assert response.status_code == 201 and response.json()["url"].startswith(by_name)
            stored.append(response.json()["id"])
    assert [image["id"] for image in get(f"{by_name}/images/", token).json()] == stored


def test_revalidation_and_ranges_pass_through_the_gateway(gateway_url: str) -> None:
    _, token = register(gateway_url)
    url = uploaded(gateway_url, token, photo((800, 600), "purple"))["url"]
    full = get(url)
    etag, modified = full.headers["ETag"], full.headers["Last-Modified"]

    unchanged = get(url, headers={"If-None-Match": etag})
    unchanged_since = get(url, headers={"If-Modified-Since": modified})
    changed = get(url, headers={"If-None-Match": '"something-else"'})
    head = requests.head(url, timeout=TIMEOUT)
    first_bytes = get(url, headers={"Range": "bytes=0-99"})
    last_bytes = get(url, headers={"Range": "bytes=-10"})

    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["ETag"] == etag
    assert unchanged_since.status_code == 304
    assert changed.status_code == 200 and changed.content == full.content
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(full.content))
    assert first_bytes.status_code == 206
    assert first_bytes.content == full.content[:100]
    assert first_bytes.headers["Content-Range"] == f"bytes 0-99/{len(full.content)}"
    assert last_bytes.status_code == 206 and last_bytes.content == full.content[-10:]


# Whose image it is


def test_another_users_image_is_not_found(gateway_url: str) -> None:
    _, owner = register(gateway_url)
    _, other = register(gateway_url)
    image = uploaded(gateway_url, owner, photo((120, 90), "red"))
    path = f"{gateway_url}/images/{image['id']}/"

    read = get(path, other)
    replaced = send_image(gateway_url, other, photo((10, 10), "black"), image_id=image["id"])
    deleted = requests.delete(path, headers=token_header(other), timeout=TIMEOUT)

    assert (read.status_code, replaced.status_code, deleted.status_code) == (404, 404, 404)
    assert read.json()["code"] == "not_found"
    assert get(f"{gateway_url}/images/", other).json() == []
    still = get(path, owner)
    assert still.status_code == 200
    assert decoded(get(still.json()["url"]).content).size == (120, 90)


def test_no_token_is_401(gateway_url: str) -> None:
    _, owner = register(gateway_url)
    image = uploaded(gateway_url, owner, photo())

    answers = [
        requests.get(f"{gateway_url}/images/", timeout=TIMEOUT),
        requests.post(
            f"{gateway_url}/images/", files={"image": ("a.jpg", photo())}, timeout=TIMEOUT
        ),
        requests.get(f"{gateway_url}/images/{image['id']}/", timeout=TIMEOUT),
        requests.delete(f"{gateway_url}/images/{image['id']}/", timeout=TIMEOUT),
        get(f"{gateway_url}/images/", "not-a-token"),
    ]

    assert [answer.status_code for answer in answers] == [401] * len(answers)
    assert {answer.json()["code"] for answer in answers} == {"unauthorized"}
    assert get(f"{gateway_url}/images/{image['id']}/", owner).status_code == 200


def test_a_url_without_its_signature_is_forbidden_even_to_the_owner(gateway_url: str) -> None:
    _, owner = register(gateway_url)
    url = uploaded(gateway_url, owner, photo())["url"]
    query = signed_query(url)
    assert get(url).status_code == 200

    forged = [
        with_query(url),
        with_query(url, expires=query["expires"]),
        with_query(url, expires=query["expires"], signature=altered(query["signature"])),
        with_query(url, expires=str(int(query["expires"]) + 600), signature=query["signature"]),
        with_query(url.replace("/media/images/", "/media/thumbs/"), **query),
    ]
    answers = [get(address, owner) for address in forged]

    assert [answer.status_code for answer in answers] == [403] * len(forged)
    assert {answer.json()["code"] for answer in answers} == {"invalid_signature"}


# Validation


def test_what_is_not_an_image_is_refused(gateway_url: str) -> None:
    _, token = register(gateway_url)
    image = uploaded(gateway_url, token, photo((60, 40), "yellow"))

    text_file = send_image(gateway_url, token, b"just some text\n" * 100, filename="naruto.jpg")
    truncated = send_image(gateway_url, token, photo((400, 300))[:500], filename="cut.jpg")
    replaced_by_text = send_image(gateway_url, token, b"%PDF-1.4\n", image_id=image["id"])

    for answer in (text_file, truncated, replaced_by_text):
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == NOT_AN_IMAGE
        assert answer.json()["code"] == "not_an_image"
    assert [item["id"] for item in get(f"{gateway_url}/images/", token).json()] == [image["id"]]
    kept = get(f"{gateway_url}/images/{image['id']}/", token).json()
    assert decoded(get(kept["url"]).content).size == (60, 40)


def test_a_missing_or_empty_image_field_is_400(gateway_url: str) -> None:
    _, token = register(gateway_url)
    images = f"{gateway_url}/images/"

    other_field = requests.post(
        images, files={"picture": ("a.jpg", photo())}, headers=token_header(token), timeout=TIMEOUT
    )
    form_value = requests.post(
        images, data={"image": "naruto.jpg"}, headers=token_header(token), timeout=TIMEOUT
    )
    no_body = requests.post(images, headers=token_header(token), timeout=TIMEOUT)
    empty_file = send_image(gateway_url, token, b"")

    for answer in (other_field, form_value, no_body, empty_file):
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "validation_error"
        assert "image" in answer.json()["errors"]
    assert get(images, token).json() == []


def test_an_upload_over_the_limit_is_413(gateway_url: str, tmp_path: Path) -> None:
    """The shared stack keeps the default limit (20 MiB): a 21 MiB body is refused."""
    _, token = register(gateway_url)
    blob = tmp_path / "big.jpg"
    blob.write_bytes(photo() + bytes(21 * MIB))

    with blob.open("rb") as stream:
        answer = send_image(gateway_url, token, stream)

    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]
    assert get(f"{gateway_url}/images/", token).json() == []


# A 40 MB picture, memory bounded

LARGE_SIDE = 3700  # 3700 x 3700 RGB noise, stored uncompressed: 41 MB
LARGE_LIMITS = {"MEDIA_MAX_BYTES": str(50 * MIB), "MEDIA_MAX_PIXELS": str(50_000_000)}
# Pillow holds an RGB picture as 4 bytes a pixel. Besides that one decoded copy the media
# worker may use a little working memory (encoder buffers, the thumbnail's reduced copy:
# about 2.5 MiB here, the ORM), but never another copy of the 41 MB upload: the form
# parser spools it to disk and the image is read from and written to files.
WORKING_MEMORY = 20 * MIB
# The gateway forwards both bodies in 64 KiB chunks: a copy of either would be 39 MiB.
GATEWAY_GROWTH = 16 * MIB


@pytest.fixture
def large_stack(stack: RunningStack, tmp_path: Path) -> Iterator[RunningStack]:
    """auth, media and the gateway of their own: media accepts 50 MB files."""
    with e2e_stack(
        tmp_path / "stack",
        ("auth", "media", "gateway"),
        label="e2e_large",
        redis_url=stack.environment["REDIS_URL"],
        settings=LARGE_LIMITS,
    ) as started:
        yield started


def peak_growth(pid: int, baseline_kib: int) -> int:
    return (status_kib(pid)["VmHWM"] - baseline_kib) * 1024


def test_a_40_mb_upload_is_streamed_and_memory_stays_bounded(
    large_stack: RunningStack, tmp_path: Path
) -> None:
    gateway = large_stack.url("gateway")
    source = tmp_path / "noise.png"
    file_size = noise_png(source, LARGE_SIDE)
    assert 40 * 10**6 < file_size < 50 * MIB
    _, token = register(gateway)
    uploaded(gateway, token, photo())  # first request: imports and connections warm
    [media_worker] = worker_pids(large_stack.processes["media"])
    [gateway_worker] = worker_pids(large_stack.processes["gateway"])
    media_baseline = restart_peak(media_worker)
    gateway_baseline = restart_peak(gateway_worker)

    answer = send_file(gateway, token, source, "image/png")
    media_growth = peak_growth(media_worker, media_baseline)
    downloaded = tmp_path / "downloaded.png"
    with requests.get(answer.json()["url"], stream=True, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "image/png"
        with downloaded.open("wb") as out:
            for chunk in response.iter_content(1024 * 1024):
                out.write(chunk)
    gateway_growth = peak_growth(gateway_worker, gateway_baseline)

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["width"], body["height"], body["content_type"]) == (
        LARGE_SIDE,
        LARGE_SIDE,
        "image/png",
    )
    assert downloaded.stat().st_size == body["size"]
    assert pixels_digest(downloaded) == pixels_digest(source)
    decoded_bytes = LARGE_SIDE * LARGE_SIDE * 4
    assert media_growth < decoded_bytes + WORKING_MEMORY, media_growth / MIB
    assert gateway_growth < GATEWAY_GROWTH, gateway_growth / MIB


def pixels_digest(path: Path) -> str:
    with Image.open(path) as picture:
        return hashlib.sha256(picture.tobytes()).hexdigest()
