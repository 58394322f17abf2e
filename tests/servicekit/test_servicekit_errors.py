"""JSON errors for every status: never HTML, never a traceback."""

from __future__ import annotations

import io
import json
import logging

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder

from servicekit.errors import REQUIRED_MESSAGE, ApiError, DomainError, flatten_messages, slug
from servicekit.testing import TestKeys, serve_wsgi
from tests.servicekit.servicekit_harness import bearer


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    return body


def test_unknown_path_is_json_404(client: FlaskClient) -> None:
    response = client.get("/no/such/path", headers={"Accept": "text/html"})
    body = assert_json_error(response, 404, "not_found")
    assert set(body) == {"error", "code"}
    assert b"<" not in response.data


def test_wrong_method_is_json_405_with_allow(client: FlaskClient) -> None:
    response = client.delete("/staff")
    assert_json_error(response, 405, "method_not_allowed")
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert "GET" in allowed and "DELETE" not in allowed


def test_view_raising_is_json_500_and_logged(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="servicekit.errors"):
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.mimetype == "application/json"
    assert response.get_json() == {
        "error": "internal server error",
        "code": "internal_server_error",
    }
    assert b"Traceback" not in response.data and b"hunter2" not in response.data
    logged = [r for r in caplog.records if r.name == "servicekit.errors"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert isinstance(logged[0].exc_info[1], RuntimeError)


def test_api_error_with_body_is_returned_exactly(client: FlaskClient) -> None:
    response = client.get("/seed-error")
    assert response.status_code == 422
    assert response.mimetype == "application/json"
    assert response.get_json() == {"detail": "seed-shaped", "fields": ["a", "b"]}


def test_api_error_in_view_has_suite_shape(client: FlaskClient, test_keys: TestKeys) -> None:
    response = client.get("/things/999", headers=bearer(test_keys.token()))
    assert response.get_json() == {"error": "no such thing", "code": "not_found"}
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        '{"name": ',
        "{'name': 'x'}",
        "\xff\xfe",
        "NaN-ish",
        '{"name": "x", "items": ' + "[" * 10_000 + "]" * 10_000 + "}",
        '{"name": "x", "items": [{"value": ' + "9" * 5000 + "}]}",
    ],
    ids=["truncated", "single-quotes", "not-utf8", "garbage", "too-deep", "huge-integer"],
)
def test_invalid_json_body_is_400(client: FlaskClient, body: str) -> None:
    response = client.post("/things", data=body.encode("latin-1"), content_type="application/json")
    assert_json_error(response, 400, "invalid_json")


def test_missing_required_field(client: FlaskClient) -> None:
    response = client.post("/things", json={"items": []})
    body = assert_json_error(response, 400, "validation_error")
    assert body["errors"] == {"name": REQUIRED_MESSAGE}


def test_nested_list_errors_have_paths(client: FlaskClient) -> None:
    payload = {"name": "x", "items": [{"value": 1}, {"value": "many"}, {}]}
    response = client.post("/things", json=payload)
    body = assert_json_error(response, 400, "validation_error")
    assert body["errors"] == {
        "items[1].value": "Not a valid integer.",
        "items[2].value": REQUIRED_MESSAGE,
    }


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ([], {"_schema": "Invalid input type."}),
        ("text", {"_schema": "Invalid input type."}),
        ({"name": 5}, {"name": "Not a valid string."}),
        ({"name": "x", "items": "no"}, {"items": "Not a valid list."}),
        ({"name": "x", "extra": 1}, {"extra": "Unknown field."}),
    ],
    ids=["list", "string", "wrong-type", "not-a-list", "unknown-field"],
)
def test_wrongly_shaped_bodies_are_400(
    client: FlaskClient, payload: object, errors: dict[str, str]
) -> None:
    response = client.post("/things", json=payload)
    body = assert_json_error(response, 400, "validation_error")
    assert body["errors"] == errors


def test_body_over_max_content_length_is_json_413(make_app) -> None:
    app: Flask = make_app(MAX_CONTENT_LENGTH=1024)
    payload = json.dumps({"name": "x" * 2048})
    response = app.test_client().post("/things", data=payload, content_type="application/json")
    assert_json_error(response, 413, "payload_too_large")


def test_errors_over_real_http(make_app) -> None:
    app: Flask = make_app(MAX_CONTENT_LENGTH=1024)
    with serve_wsgi(app) as url:
        cases = [
            (requests.get(url + "/nowhere", timeout=5), 404, "not_found"),
            (requests.put(url + "/staff", timeout=5), 405, "method_not_allowed"),
            (requests.get(url + "/boom", timeout=5), 500, "internal_server_error"),
            (requests.get(url + "/me", timeout=5), 401, "unauthorized"),
            (requests.post(url + "/things", json={"name": "x" * 2048}, timeout=5), 413,
             "payload_too_large"),
        ]  # fmt: skip
    for response, status, code in cases:
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["code"] == code
        assert response.headers["X-Request-ID"]


def test_api_error_defaults() -> None:
    error = ApiError(409, "already there", extra_field=1)
    assert error.status == 409
    assert error.body() == {"error": "already there", "code": "conflict", "extra_field": 1}
    assert slug(404) == "not_found"
    assert slug(418) == "im_a_teapot"
    assert slug(599) == "error"


@pytest.mark.parametrize(
    ("messages", "flat"),
    [
        ({"name": ["Missing data for required field."]}, {"name": REQUIRED_MESSAGE}),
        ({"name": ["first", "second"]}, {"name": "first"}),
        ({"a": {"b": {"c": ["deep"]}}}, {"a.b.c": "deep"}),
        ({"items": {0: {"v": ["bad"]}, 3: ["worse"]}}, {"items[0].v": "bad", "items[3]": "worse"}),
        ({"_schema": ["whole body"]}, {"_schema": "whole body"}),
        ({"a": {"_schema": ["inner"]}}, {"a": "inner"}),
        ({"a": [{"b": ["x"]}, {"b": ["y"]}]}, {"a[0].b": "x", "a[1].b": "y"}),
        (["top"], {"_schema": "top"}),
        ({"n": 5}, {"n": "5"}),
        ({}, {}),
    ],
)
def test_flatten_messages(messages: object, flat: dict[str, str]) -> None:
    assert flatten_messages(messages) == flat


class StallingBody(io.BytesIO):
    """A request body whose socket fails after the first bytes, as gunicorn's does when
    the client stalls past the client timeout (TimeoutError) or drops (OSError)."""

    def __init__(self, failure: OSError) -> None:
        super().__init__(b'{"name": "')
        self.failure = failure

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if not data:
            raise self.failure
        return data


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [(TimeoutError("timed out"), 408, "request_timeout"), (ConnectionResetError(), 400,
     "bad_request")],
)  # fmt: skip
def test_a_client_failing_mid_body_gets_a_4xx_not_a_500(
    app: Flask, failure: OSError, status: int, code: str, chunked: bool, test_keys: TestKeys
) -> None:
    """The server's own environ: a declared length, or a chunked body gunicorn marks as
    terminated (werkzeug then reads the socket's stream directly)."""
    headers = {"Content-Type": "application/json", **bearer(test_keys.token())}
    environ = EnvironBuilder(method="POST", path="/things", headers=headers).get_environ()
    environ["wsgi.input"] = StallingBody(failure)
    if chunked:
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input_terminated"] = True
    else:
        environ["CONTENT_LENGTH"] = "100"
    answer: list[str] = []
    body = b"".join(app(environ, lambda status_line, _headers: answer.append(status_line)))
    assert answer[0].startswith(str(status))
    assert json.loads(body)["code"] == code


class ThingLocked(DomainError):
    status, code, message = 423, "locked", "the thing is locked"


class SlowDown(DomainError):
    status, code, message = 429, "rate_limited", "too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class SeedShaped(DomainError):
    status = 422

    def body(self) -> dict[str, object]:
        return {"message": "as the document shows"}


@pytest.mark.parametrize(
    ("error", "status", "body", "headers"),
    [
        (ThingLocked(), 423, {"error": "the thing is locked", "code": "locked"}, {}),
        (
            ThingLocked("locked by bob", errors={"name": "in use"}),
            423,
            {"error": "locked by bob", "code": "locked", "errors": {"name": "in use"}},
            {},
        ),
        (
            SlowDown(7),
            429,
            {"error": "too many requests", "code": "rate_limited"},
            {"Retry-After": "7"},
        ),
        (SeedShaped(), 422, {"message": "as the document shows"}, {}),
        (ApiError.with_body(400, {"detail": "x"}), 400, {"detail": "x"}, {}),
    ],
    ids=["class-defaults", "message-and-fields", "headers", "seed-body", "api-error-body"],
)
def test_a_domain_error_raised_anywhere_is_its_own_answer(
    make_app, error: DomainError, status: int, body: dict, headers: dict[str, str]
) -> None:
    app: Flask = make_app()

    @app.get("/raise")
    def raise_it() -> None:
        raise error

    response = app.test_client().get("/raise")
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.get_json() == body
    for name, value in headers.items():
        assert response.headers[name] == value
