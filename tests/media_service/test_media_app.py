"""The service as a whole: its OpenAPI document, health, and running without a URL secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from servicekit.settings import SettingsError
from tests.media_service.media_helpers import all_files_under, image_bytes, image_rows, send_image


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][path][method]
    return found


def multipart_fields(document: dict[str, Any], op: dict[str, Any]) -> set[str]:
    schema = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return set(schema["properties"])


def test_the_openapi_document_lists_the_routes_with_multipart_bodies(
    client: FlaskClient,
) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert {"/images/", "/images/{image_id}", "/media/{key}", "/internal/files"} <= set(paths)
    assert set(paths["/images/"]) >= {"get", "post"}
    assert set(paths["/images/{image_id}"]) >= {"get", "put", "delete"}
    assert "delete" in paths["/internal/files/{key}"]
    for method, path, fields in [
        ("post", "/images/", {"image"}),
        ("put", "/images/{image_id}", {"image"}),
        ("post", "/internal/files", {"file", "owner", "purpose"}),
    ]:
        op = operation(document, method, path)
        assert multipart_fields(document, op) == fields, (method, path)
        assert op["security"] == [{"bearerAuth": []}]
    upload = operation(document, "post", "/images/")
    assert {"201", "401", "409", "413", "422"} <= set(upload["responses"])
    served = operation(document, "get", "/media/{key}")
    assert {"200", "206", "304", "403", "404", "416"} <= set(served["responses"])
    listing = operation(document, "get", "/images/")
    assert {"page", "page_size"} <= {parameter["name"] for parameter in listing["parameters"]}


def test_health_answers(client: FlaskClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200


def test_without_a_url_secret_the_image_api_is_503_and_stores_nothing(
    make_app: Callable[..., Flask], alice: dict[str, str], storage_dir: Path
) -> None:
    app = make_app(MEDIA_URL_SECRET=None)
    client = app.test_client()
    response = send_image(client, alice, image_bytes())
    assert response.status_code == 503
    assert response.json["code"] == "service_unavailable"
    assert all_files_under(storage_dir) == []
    assert image_rows(app) == []
    assert client.get("/images/", headers=alice).status_code == 503
    assert client.get("/images/").status_code == 401  # still no hint to strangers


def test_options_reveals_nothing_and_needs_no_token(client: FlaskClient) -> None:
    response = client.options("/images/")
    assert response.status_code == 200
    assert response.data == b""
    assert {"GET", "POST"} <= set(response.headers["Allow"].split(", "))


def test_a_limit_that_is_not_positive_is_refused_at_start(
    make_app: Callable[..., Flask],
) -> None:
    for name in ("MEDIA_URL_WINDOW", "MEDIA_MAX_BYTES", "MEDIA_QUOTA_IMAGES"):
        with pytest.raises(SettingsError, match=f"{name}: must be at least 1, got 0"):
            make_app(**{name: 0})
