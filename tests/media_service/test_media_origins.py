"""Where the image URLs point: MEDIA_PUBLIC_URL, or a host MEDIA_ALLOWED_HOSTS admits; a
client's Host or X-Forwarded-Host is never copied into an answer."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from media_service.origins import Authority, parse_authority, parse_public_url
from servicekit.config import REPO_ROOT
from servicekit.settings import SettingsError
from tests.media_service.media_helpers import (
    created,
    image_bytes,
    image_rows,
    media_path,
    multipart,
    send_image,
    stored_files,
)

# What an outside review sent: markup in the port, and a host that turns the rest of the
# URL into a path and a query of another site.
HOSTILE_HOSTS = ['127.0.0.1:8000"><script>', "evil.example:1/x?#"]
HOSTILE_MARKS = ["<script>", '">', "evil.example"]
NOT_HOSTS = [
    *HOSTILE_HOSTS,
    "",
    "localhost:",
    "localhost:0",
    "localhost:65536",
    "localhost:8o",
    "localhost:+80",
    "user@localhost",
    "local host",
    "[::1",
    "[::1]x",
    "[not-an-address]",
    "[fe80::1%25eth0]",
    "::1",
    "localhost/",
]


def assert_not_reflected(response: TestResponse) -> None:
    text = response.get_data(as_text=True)
    for mark in HOSTILE_MARKS:
        assert mark not in text


def refused_as(response: TestResponse, code: str) -> None:
    assert response.status_code == 400, response.json
    assert response.json is not None and response.json["code"] == code
    assert_not_reflected(response)


def url_origin(url: str) -> str:
    return url[: url.index("/media/")]


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
@pytest.mark.parametrize("header", ["Host", "X-Forwarded-Host"])
def test_a_hostile_host_is_400_and_never_reflected(
    app: Flask,
    client: FlaskClient,
    alice: dict[str, str],
    storage_dir: Path,
    header: str,
    host: str,
) -> None:
    hostile = {**alice, header: host}
    refused_as(send_image(client, hostile, image_bytes()), "bad_host")
    assert image_rows(app) == []
    assert not any(stored_files(storage_dir).values())
    image_id = created(client, alice)["id"]
    for response in (
        client.get("/images/", headers=hostile),
        client.get(f"/images/{image_id}/", headers=hostile),
        send_image(client, hostile, image_bytes(), image_id=image_id),
    ):
        refused_as(response, "bad_host")


@pytest.mark.parametrize(
    "app_config", [{"MEDIA_ALLOWED_HOSTS": "evil.example,127.0.0.1"}], indirect=True
)
@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_a_hostile_host_is_refused_even_when_its_name_is_allowed(
    client: FlaskClient, alice: dict[str, str], host: str
) -> None:
    for header in ("Host", "X-Forwarded-Host"):
        refused_as(send_image(client, {**alice, header: host}, image_bytes()), "bad_host")


@pytest.mark.parametrize("host", NOT_HOSTS)
def test_anything_but_a_host_and_port_is_400_bad_host(
    client: FlaskClient, alice: dict[str, str], host: str
) -> None:
    response = client.get("/images/", headers={**alice, "X-Forwarded-Host": host})
    refused_as(response, "bad_host")
    assert response.json == {
        "error": "the request's host is not a valid host[:port]",
        "code": "bad_host",
    }


def test_a_host_outside_the_allow_list_is_400_bad_host(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    for host in ("evil.example", "evil.example:8000", "localhost.evil.example", "10.0.0.1"):
        response = client.get("/images/", headers={**alice, "X-Forwarded-Host": host})
        assert response.status_code == 400
        assert response.json == {
            "error": "the request's host is not one this service builds URLs for",
            "code": "bad_host",
        }


@pytest.mark.parametrize("scheme", ["gopher", "javascript", "https, http", "", "http:"])
def test_a_forwarded_scheme_other_than_http_or_https_is_400_bad_scheme(
    client: FlaskClient, alice: dict[str, str], scheme: str
) -> None:
    response = client.get("/images/", headers={**alice, "X-Forwarded-Proto": scheme})
    assert response.status_code == 400
    assert response.json == {
        "error": "the forwarded scheme must be http or https",
        "code": "bad_scheme",
    }


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("localhost", "http://localhost"),
        ("localhost:8000", "http://localhost:8000"),
        ("LocalHost.:8000", "http://localhost:8000"),
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("[::1]:8000", "http://[::1]:8000"),
        ("[0:0::1]", "http://[::1]"),
    ],
)
def test_by_default_the_local_names_are_allowed_on_any_port(
    client: FlaskClient, alice: dict[str, str], host: str, origin: str
) -> None:
    body = created(client, {**alice, "Host": host})
    assert url_origin(body["url"]) == url_origin(body["thumbnail_url"]) == origin
    assert client.get(media_path(body["url"])).status_code == 200


@pytest.mark.parametrize(
    "app_config",
    [{"MEDIA_ALLOWED_HOSTS": "media.example.org, api.example.org:8443, [2001:db8::1]:443"}],
    indirect=True,
)
def test_an_allowed_forwarded_host_and_scheme_build_the_urls(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    admitted = {
        ("https", "media.example.org"): "https://media.example.org",
        ("https", "Media.Example.ORG:9000"): "https://media.example.org:9000",
        ("http", "api.example.org:8443"): "http://api.example.org:8443",
        ("https", "[2001:db8::1]"): "https://[2001:db8::1]",  # 443 implied
        ("https", "[2001:db8::1]:443"): "https://[2001:db8::1]:443",
    }
    for (scheme, host), origin in admitted.items():
        forwarded = {**alice, "X-Forwarded-Proto": scheme, "X-Forwarded-Host": host}
        body = created(client, forwarded)
        assert url_origin(body["url"]) == url_origin(body["thumbnail_url"]) == origin
        assert client.get(media_path(body["url"])).status_code == 200
    refused = [
        ("https", "api.example.org"),  # 443, not 8443
        ("http", "[2001:db8::1]"),  # 80, not 443
        ("https", "localhost"),  # the default list is replaced
        ("https", "sub.media.example.org"),
    ]
    for scheme, host in refused:
        forwarded = {**alice, "X-Forwarded-Proto": scheme, "X-Forwarded-Host": host}
        refused_as(client.get("/images/", headers=forwarded), "bad_host")


@pytest.mark.parametrize(
    "app_config", [{"MEDIA_PUBLIC_URL": "https://CDN.example.net/suite/"}], indirect=True
)
def test_a_configured_public_url_wins_over_any_host(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    sent = [
        {},
        {"Host": "evil.example"},
        {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "localhost"},
        *({header: host} for host in HOSTILE_HOSTS for header in ("Host", "X-Forwarded-Host")),
        {"X-Forwarded-Proto": "gopher"},
    ]
    for headers in sent:
        response = send_image(client, {**alice, **headers}, image_bytes())
        assert response.status_code == 201, headers
        assert_not_reflected(response)
        body = response.json
        assert body is not None
        assert body["url"].startswith("https://cdn.example.net/suite/media/images/")
        assert body["thumbnail_url"].startswith("https://cdn.example.net/suite/media/thumbs/")
        listed = client.get("/images/", headers={**alice, **headers})
        assert listed.status_code == 200
        assert_not_reflected(listed)


@pytest.mark.parametrize("app_config", [{"MEDIA_ALLOWED_HOSTS": ""}], indirect=True)
def test_with_no_public_url_and_no_allowed_host_the_image_api_is_503(
    app: Flask, client: FlaskClient, alice: dict[str, str]
) -> None:
    response = send_image(client, alice, image_bytes())
    assert response.status_code == 503
    assert response.json == {
        "error": "media URLs are not configured",
        "code": "service_unavailable",
    }
    assert image_rows(app) == []


@pytest.mark.parametrize(
    "app_config",
    [{}, {"MEDIA_ALLOWED_HOSTS": ""}, {"MEDIA_PUBLIC_URL": "https://a.example"}],
    indirect=True,
)
@pytest.mark.parametrize("host", ["media_service:8005", *HOSTILE_HOSTS])
def test_the_internal_file_store_answers_site_relative_urls_whatever_the_host(
    client: FlaskClient, service_headers: dict[str, str], host: str
) -> None:
    """Other services call media_service by its internal name; their files' URLs are
    relative to the gateway, so no host is needed."""
    response = client.post(
        "/internal/files",
        data={"owner": "user-1", **multipart("file", image_bytes("PNG"), "me.png")},
        headers={**service_headers, "Host": host},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    body = response.get_json()
    assert body["url"] == f"/media/{body['key']}"
    assert client.get(body["url"], headers={"Host": host}).status_code == 200


BAD_PUBLIC_URLS = [
    "cdn.example.net",
    "//cdn.example.net",
    "ftp://cdn.example.net",
    "javascript:alert(1)",
    "https://",
    "https://user:hunter2@cdn.example.net",
    "https://cdn.example.net?x=1",
    "https://cdn.example.net/path?",
    "https://cdn.example.net/#top",
    "https://cdn.example.net:0",
    "https://cdn.example.net:99999",
    "https://cdn.example.net:",
    "https://cdn example.net",
    "https://cdn.example.net/a b",
    'https://cdn.example.net/"><script>',
    "https://[::1",
    " https://cdn.example.net",
    "https://cdn.example.net/\n",
]


@pytest.mark.parametrize("value", BAD_PUBLIC_URLS)
def test_a_bad_public_url_stops_the_start_naming_the_variable(
    make_app: Callable[..., Flask], value: str
) -> None:
    with pytest.raises(SettingsError, match="MEDIA_PUBLIC_URL") as refused:
        make_app(MEDIA_PUBLIC_URL=value)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    "value", ["*", ".example.org", "example.org:0", "example.org/x", "[::1", "::1", "a b"]
)
def test_a_bad_allowed_host_stops_the_start_naming_the_variable(
    make_app: Callable[..., Flask], value: str
) -> None:
    with pytest.raises(SettingsError, match="MEDIA_ALLOWED_HOSTS"):
        make_app(MEDIA_ALLOWED_HOSTS=f"localhost,{value}")


def test_the_service_process_does_not_start_with_a_bad_public_url(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "FLOTILLA_VAR_DIR": str(tmp_path),
        "MEDIA_PUBLIC_URL": "https://cdn.example.net/?x=1",
    }
    started = subprocess.run(
        [sys.executable, "-c", "import media_service.wsgi"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "MEDIA_PUBLIC_URL: must have no query or fragment" in started.stderr


def test_public_urls_are_kept_as_an_origin_and_a_path_prefix() -> None:
    assert parse_public_url("https://api.example.org") == "https://api.example.org"
    assert parse_public_url("HTTP://API.example.org:8000/") == "http://api.example.org:8000"
    assert parse_public_url("https://[::1]:8443/a/b%20c/") == "https://[::1]:8443/a/b%20c"
    assert parse_public_url("https://example.org/@media") == "https://example.org/@media"


def test_authorities_follow_rfc_3986() -> None:
    assert parse_authority("Example.ORG.") == Authority("example.org", None)
    assert parse_authority("192.0.2.1:00080") == Authority("192.0.2.1", 80)
    assert parse_authority("[2001:DB8:0::1]:65535") == Authority("[2001:db8::1]", 65535)
    assert parse_authority("xn--bcher-kva.example") == Authority("xn--bcher-kva.example", None)
    assert parse_authority("a%2Eb") == Authority("a%2eb", None)
    for text in [
        *NOT_HOSTS,
        ".",
        "[v1.x]",
        "bücher.example",
        "a:1:2",
        "localhost:123456",
        "localhost\t",
    ]:
        assert parse_authority(text) is None, text
