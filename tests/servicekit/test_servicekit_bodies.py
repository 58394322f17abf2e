"""Request bodies: one bounded JSON parser behind every way a service reads JSON, forms
with the same keys, and a 4xx (never a 500) for anything that is not what a route takes."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from marshmallow import Schema, fields

from servicekit.bodies import (
    MAX_JSON_DEPTH,
    InvalidJson,
    json_body,
    json_or_form_body,
    load_body,
    loads_json,
)

DEEP = "[" * 10_000 + "]" * 10_000
HUGE_INTEGER = "9" * 5000


class ScheduleSchema(Schema):
    url = fields.String(required=True)
    timestamps = fields.List(fields.Integer(), required=True)


@pytest.fixture
def body_client(make_app: Any) -> FlaskClient:
    app: Flask = make_app()

    @app.post("/json")
    def echo_json() -> Any:
        return jsonify({"got": json_body()})

    @app.post("/object")
    def echo_object() -> Any:
        return jsonify({"got": json_body(require_object=True)})

    @app.post("/either")
    def echo_either() -> Any:
        return jsonify({"got": json_or_form_body()})

    @app.post("/schema")
    def echo_schema() -> Any:
        return jsonify({"got": load_body(ScheduleSchema())})

    @app.post("/flask")
    def echo_flask() -> Any:
        return jsonify({"got": request.get_json()})

    return app.test_client()


def test_loads_json_takes_ordinary_documents() -> None:
    assert loads_json(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads_json(nested) == eval(nested)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "empty body"),
        (b"  \n", "empty body"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"a": ', "malformed JSON"),
        (DEEP.encode(), "nested more than"),
        (("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)).encode(), "nested more than"),
        (('{"n": ' + HUGE_INTEGER + "}").encode(), "malformed JSON"),
    ],
    ids=["empty", "blank", "not-utf8", "truncated", "very-deep", "one-too-deep", "huge-int"],
)
def test_loads_json_refuses_with_a_reason(raw: bytes, words: str) -> None:
    with pytest.raises(InvalidJson) as refused:
        loads_json(raw)
    assert words in refused.value.detail
    assert refused.value.status == 400 and refused.value.code == "invalid_json"


@pytest.mark.parametrize("route", ["/json", "/object", "/either", "/schema", "/flask"])
@pytest.mark.parametrize(
    "payload",
    ['{"url": ', DEEP, '{"url": "x", "timestamps": [' + HUGE_INTEGER + "]}"],
    ids=["malformed", "deep", "huge-int"],
)
def test_every_way_of_reading_json_answers_400_invalid_json(
    body_client: FlaskClient, route: str, payload: str
) -> None:
    response = body_client.post(route, data=payload, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_json"


def test_json_body_wants_json(body_client: FlaskClient) -> None:
    response = body_client.post("/json", data="a=1", content_type="text/plain")
    assert response.status_code == 415
    assert response.get_json()["code"] == "unsupported_media_type"
    assert body_client.post("/json", json=[1, 2]).get_json() == {"got": [1, 2]}


def test_require_object(body_client: FlaskClient) -> None:
    response = body_client.post("/object", json=[1])
    assert response.status_code == 400
    assert response.get_json()["error"] == "the body must be a JSON object"


def test_json_or_form_reads_either(body_client: FlaskClient) -> None:
    assert body_client.post("/either", json={"a": 1}).get_json() == {"got": {"a": 1}}
    form = body_client.post("/either", data={"a": "1", "b": ["x", "y"]})
    assert form.get_json() == {"got": {"a": "1", "b": ["x", "y"]}}
    assert body_client.post("/either").get_json() == {"got": {}}
    other = body_client.post("/either", data="<a/>", content_type="application/xml")
    assert other.status_code == 415


def test_load_body_names_each_refused_field(body_client: FlaskClient) -> None:
    response = body_client.post("/schema", json={"timestamps": ["soon"]})
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "validation_error"
    assert body["errors"] == {
        "url": "missing required field",
        "timestamps[0]": "Not a valid integer.",
    }
    form = body_client.post("/schema", data={"url": "u", "timestamps": ["1", "2"]})
    assert form.get_json() == {"got": {"url": "u", "timestamps": [1, 2]}}
