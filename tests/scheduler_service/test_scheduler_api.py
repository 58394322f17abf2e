"""The scheduling API with the Flask test client on a fresh database and a real Redis:
the document's request, its timestamp forms, the refusals, and the jobs handed to RQ."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from scheduler_service.models import ScheduledCall, db
from scheduler_service.outbound import AllowedTarget
from scheduler_service.settings import SchedulerSettings
from scheduler_service.timestamps import render
from servicekit.settings import SettingsError, app_settings, load_settings
from tests.scheduler_service.scheduler_helpers import OTHER, STAFF

Auth = Callable[..., dict[str, str]]
URL = "/api/schedule-api/"
DEEP = "[" * 10_000 + "]" * 10_000
HUGE_INTEGER = "9" * 5000


def ahead(**delta: float) -> datetime:
    return (datetime.now(UTC) + timedelta(**delta)).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return render(moment) or ""


def call_count(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(ScheduledCall)) or 0)


def post(client: FlaskClient, auth: Auth, body: Any, **kwargs: Any) -> Any:
    return client.post(URL, json=body, headers=auth(), **kwargs)


def settings_of(app: Flask) -> SchedulerSettings:
    with app.app_context():
        return app_settings(SchedulerSettings)


def test_settings_are_checked_at_start(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(SettingsError) as refused:
        make_app(SCHEDULER_MAX_ATTEMPTS=0, SCHEDULER_DEFAULT_URL="ftp://example.org/")
    message = str(refused.value)
    assert "SCHEDULER_MAX_ATTEMPTS: must be at least 1, got 0" in message
    assert "SCHEDULER_DEFAULT_URL: must be a URL the scheduler can call" in message


def test_allowed_hosts_are_read_as_urls_name_them() -> None:
    settings = load_settings(
        SchedulerSettings,
        {"SCHEDULER_ALLOWED_HOSTS": " [::1]:9000, Hooks.Example.ORG., ,127.0.0.1:8080"},
    )
    assert settings.allowed_targets == frozenset(
        {
            AllowedTarget("::1", 9000),
            AllowedTarget("hooks.example.org"),
            AllowedTarget("127.0.0.1", 8080),
        }
    )
    assert settings.target_policy.allowed == settings.allowed_targets


def test_a_malformed_allow_list_stops_the_start(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(SettingsError) as refused:
        make_app(SCHEDULER_ALLOWED_HOSTS="127.0.0.1:8080,http://hooks.example.org/")
    assert "SCHEDULER_ALLOWED_HOSTS: each entry must be a host or host:port" in str(refused.value)


def test_the_documents_request_shape_schedules_calls(client: FlaskClient, auth: Auth) -> None:
    first, second = ahead(hours=1), ahead(hours=1, minutes=30)
    body = {"timestamps": f"{iso(first)}, {iso(second)}"}
    response = post(client, auth, body)
    assert response.status_code == 201
    created = response.get_json()
    assert [set(item) for item in created] == [{"id", "timestamp", "status"}] * 2
    assert [item["timestamp"] for item in created] == [iso(first), iso(second)]
    assert [item["status"] for item in created] == ["Pending", "Pending"]
    assert created[1]["id"] == created[0]["id"] + 1


def test_the_documents_own_example_is_in_the_past_and_ignored(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    body = {"timestamps": "2025-08-01T14:30:00Z, 2025-08-01T15:00:00Z"}
    response = post(client, auth, body)
    assert response.status_code == 201
    assert response.get_json() == []
    assert call_count(app) == 0


def test_offsets_are_honoured_and_naive_timestamps_are_utc(client: FlaskClient, auth: Auth) -> None:
    moment = ahead(days=2)
    india = moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    naive = moment.replace(tzinfo=None).isoformat()
    response = post(client, auth, {"timestamps": [india, naive, iso(moment)]})
    assert response.status_code == 201
    assert [item["timestamp"] for item in response.get_json()] == [iso(moment)] * 3


def test_past_timestamps_are_ignored_and_the_rest_scheduled(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    future = ahead(minutes=10)
    response = post(client, auth, {"timestamps": f"2020-01-01T00:00:00Z, {iso(future)}"})
    assert response.status_code == 201
    assert [item["timestamp"] for item in response.get_json()] == [iso(future)]
    assert call_count(app) == 1


def test_a_repeated_form_timestamps_field_is_a_list(client: FlaskClient, auth: Auth) -> None:
    first, second = ahead(hours=1), ahead(hours=2)
    response = client.post(URL, data={"timestamps": [iso(first), iso(second)]}, headers=auth())
    assert response.status_code == 201, response.get_json()
    assert [item["timestamp"] for item in response.get_json()] == [iso(first), iso(second)]


def test_a_form_header_map_that_is_not_json_is_refused(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    for headers in (DEEP, "{not json", '{"X-A": ' + HUGE_INTEGER + "}"):
        response = client.post(
            URL, data={"timestamps": iso(ahead(hours=1)), "headers": headers}, headers=auth()
        )
        assert response.status_code == 400
        body = response.get_json()
        assert body["code"] == "validation_error"
        assert body["errors"] == {"headers": "must be an object of header names to values"}
    assert call_count(app) == 0


def test_a_form_body_is_accepted(client: FlaskClient, auth: Auth) -> None:
    moment = ahead(hours=3)
    response = client.post(
        URL,
        data={"timestamps": iso(moment), "method": "post", "headers": '{"X-A": "1"}'},
        headers=auth(),
    )
    assert response.status_code == 201, response.get_json()
    call = client.get(f"{URL}{response.get_json()[0]['id']}/", headers=auth()).get_json()
    assert call["method"] == "POST" and call["headers"] == {"X-A": "1"}


@pytest.mark.parametrize(
    "body",
    [{}, {"timestamps": ""}, {"timestamps": "  "}, {"timestamps": []}, {"timestamps": None}],
)
def test_missing_or_empty_timestamps(client: FlaskClient, auth: Auth, body: Any) -> None:
    response = post(client, auth, body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "No timestamps provided"


def test_bad_values_are_named_and_nothing_is_scheduled(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    good = iso(ahead(hours=1))
    values = [good, "2030-13-01T00:00:00Z", "2030-02-30T10:00:00", 42, None, "tomorrow"]
    response = post(client, auth, {"timestamps": values})
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "invalid_timestamps"
    assert set(body["errors"]) == {f"timestamps[{index}]" for index in range(1, 6)}
    assert "'2030-13-01T00:00:00Z'" in body["errors"]["timestamps[1]"]
    assert "'2030-02-30T10:00:00'" in body["errors"]["timestamps[2]"]
    assert "42" in body["errors"]["timestamps[3]"]
    assert "None" in body["errors"]["timestamps[4]"]
    assert "2030-13-01T00:00:00Z" in body["error"]
    assert call_count(app) == 0


@pytest.mark.parametrize("value", [42, {"at": "2030-01-01T00:00:00Z"}, True])
def test_timestamps_of_the_wrong_type(client: FlaskClient, auth: Auth, value: Any) -> None:
    response = post(client, auth, {"timestamps": value})
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_timestamps"


def test_too_many_timestamps(make_app: Callable[..., Flask], auth: Auth) -> None:
    app = make_app(SCHEDULER_MAX_TIMESTAMPS=5)
    moment = iso(ahead(hours=1))
    response = post(app.test_client(), auth, {"timestamps": [moment] * 6})
    assert response.status_code == 400
    assert "at most 5 timestamps" in response.get_json()["error"]
    assert call_count(app) == 0


def test_the_default_limit_is_ten_thousand(app: Flask, client: FlaskClient, auth: Auth) -> None:
    moment = iso(ahead(hours=1))
    response = post(client, auth, {"timestamps": ", ".join([moment] * 10_001)})
    assert response.status_code == 400
    assert "at most 10000 timestamps" in response.get_json()["error"]
    assert call_count(app) == 0


def test_the_horizon(app: Flask, client: FlaskClient, auth: Auth) -> None:
    response = post(client, auth, {"timestamps": [iso(ahead(hours=1)), iso(ahead(days=400))]})
    assert response.status_code == 400
    assert "beyond the horizon" in response.get_json()["errors"]["timestamps[1]"]
    assert call_count(app) == 0


@pytest.mark.parametrize(
    "value", ["\u2603", "caf\u00e9 \u2603", "a\x0bb", "a\x0cb", "a\x7fb", "\x01"]
)
def test_a_header_value_http_cannot_carry_is_refused_naming_the_header(
    app: Flask, client: FlaskClient, auth: Auth, value: str
) -> None:
    response = post(client, auth, {"timestamps": iso(ahead(hours=1)), "headers": {"X-Uni": value}})
    assert response.status_code == 400
    assert "X-Uni" in response.get_json()["errors"]["headers"]
    assert call_count(app) == 0


def test_latin_1_spaces_and_tabs_are_fine_in_a_header_value(
    client: FlaskClient, auth: Auth
) -> None:
    value = "caf\u00e9\tau lait ~!"
    response = post(client, auth, {"timestamps": iso(ahead(hours=1)), "headers": {"X-A": value}})
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"method": "TRACE"}, "method"),
        ({"headers": {"Host": "evil"}}, "headers"),
        ({"headers": {"Idempotency-Key": "1"}}, "headers"),
        ({"headers": {"X-A": "a\r\nB: b"}}, "headers"),
        ({"headers": ["X-A"]}, "headers"),
        ({"body": "x" * (64 * 1024 + 1)}, "body"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_target_fields(
    app: Flask, client: FlaskClient, auth: Auth, body: dict[str, Any], field: str
) -> None:
    response = post(client, auth, {"timestamps": iso(ahead(hours=1)), **body})
    assert response.status_code == 400
    assert field in response.get_json()["errors"]
    assert call_count(app) == 0


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1/", "private"),
        ("http://100.64.0.1/", "CGNAT"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://0.0.0.0:8080/", "unspecified"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://127.0.0.1/", "only http and https"),
        ("http://user:secret@127.0.0.1/", "credentials"),
        ("http:///no-host", "no host"),
    ],
)
def test_unsafe_urls_are_refused_when_scheduling(
    app: Flask, client: FlaskClient, auth: Auth, url: str, reason: str
) -> None:
    response = post(client, auth, {"timestamps": iso(ahead(hours=1)), "url": url})
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "invalid_target"
    assert reason in body["errors"]["url"]
    assert call_count(app) == 0


def test_a_name_resolving_to_loopback_is_refused_unless_allowed(
    make_app: Callable[..., Flask], auth: Auth, target: Any
) -> None:
    port = target[1].rsplit(":", 1)[1]
    strict = make_app(SCHEDULER_ALLOWED_HOSTS=f"127.0.0.1:{port}").test_client()
    moment = iso(ahead(hours=1))
    refused = post(strict, auth, {"timestamps": moment, "url": f"http://localhost:{port}/"})
    assert refused.status_code == 400
    assert "localhost resolves to 127.0.0.1, a loopback address" in refused.get_json()["error"]
    allowed = post(strict, auth, {"timestamps": moment, "url": f"http://127.0.0.1:{port}/"})
    assert allowed.status_code == 201


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:6379/", "http://127.0.0.1/", "http://localhost:8000/"]
)
def test_other_ports_of_an_allowed_host_are_refused(
    client: FlaskClient, auth: Auth, url: str
) -> None:
    # The tests allow 127.0.0.1 and localhost on the target server's port only.
    refused = post(client, auth, {"timestamps": iso(ahead(hours=1)), "url": url})
    assert refused.status_code == 400, refused.get_json()
    assert "loopback address" in refused.get_json()["error"]
    assert call_count(client.application) == 0


def test_invalid_bodies(client: FlaskClient, auth: Auth) -> None:
    headers = {**auth(), "Content-Type": "application/json"}
    listed = client.post(URL, data="[1, 2]", headers=headers)
    assert listed.status_code == 400
    assert listed.get_json() == {
        "error": "the body must be a JSON object",
        "code": "validation_error",
    }
    text = client.post(URL, data="hello", headers={**auth(), "Content-Type": "text/plain"})
    assert text.status_code == 415
    assert text.get_json() == {
        "error": "send a JSON object or a form",
        "code": "unsupported_media_type",
    }
    untyped = client.post(URL, data=b'{"timestamps": "2031-01-01T00:00:00Z"}', headers=auth())
    assert untyped.status_code == 415
    assert untyped.get_json()["code"] == "unsupported_media_type"


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(
    "payload",
    [
        DEEP,
        '{"timestamps": [' + HUGE_INTEGER + '], "timestamp": ' + HUGE_INTEGER + "}",
        '{"timestamps": "2030-01-01T00:00:00Z", "timestamp": ',
    ],
    ids=["deep", "huge-integer", "malformed"],
)
def test_a_body_that_is_not_json_is_400_invalid_json(
    app: Flask, client: FlaskClient, auth: Auth, method: str, payload: str
) -> None:
    (call,) = post(client, auth, {"timestamps": iso(ahead(hours=1))}).get_json()
    path = URL if method == "POST" else f"{URL}{call['id']}/"
    response = client.open(
        path, method=method, data=payload, content_type="application/json", headers=auth()
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_json"
    assert call_count(app) == 1
    unchanged = client.get(f"{URL}{call['id']}/", headers=auth()).get_json()
    assert unchanged["timestamp"] == call["timestamp"]


def test_every_route_needs_a_token(client: FlaskClient, app: Flask) -> None:
    for method, path in [
        ("POST", URL),
        ("GET", URL),
        ("GET", f"{URL}1/"),
        ("DELETE", f"{URL}1/"),
        ("PATCH", f"{URL}1/"),
        ("GET", "/admin/schedule-api/api/calls"),
        ("POST", "/admin/schedule-api/api/calls/1/cancel"),
    ]:
        response = client.open(path, method=method, json={"timestamps": "bad"})
        assert response.status_code == 401, (method, path)
        assert response.get_json()["code"] == "unauthorized"
    assert call_count(app) == 0


def test_the_job_is_the_call_in_json_handed_to_rq_before_its_instant(
    app: Flask, client: FlaskClient, auth: Auth, redis_client: redis.Redis
) -> None:
    moment = ahead(hours=2)
    (call,) = post(client, auth, {"timestamps": iso(moment)}).get_json()
    job = Job.fetch(str(call["id"]), connection=redis_client, serializer=JSONSerializer)
    assert job.func_name == "scheduler_service.jobs.dispatch_call"
    due_us = int(moment.timestamp()) * 1_000_000
    assert job.args == [call["id"], due_us]
    payload = json.loads(zlib.decompress(redis_client.hget(job.key, "data")))
    assert payload[0] == "scheduler_service.jobs.dispatch_call"
    registry = Queue("scheduler", connection=redis_client).scheduled_job_registry
    lead = settings_of(app).handoff_lead
    assert registry.get_scheduled_time(job).timestamp() == int(moment.timestamp() - lead)


def test_a_call_due_within_the_lead_is_queued_at_once(
    client: FlaskClient, auth: Auth, redis_client: redis.Redis
) -> None:
    (call,) = post(client, auth, {"timestamps": iso(ahead(seconds=3))}).get_json()
    queue = Queue("scheduler", connection=redis_client, serializer=JSONSerializer)
    assert queue.job_ids == [str(call["id"])]


def test_the_default_target_and_the_stored_request(
    client: FlaskClient, auth: Auth, target: tuple[Any, str]
) -> None:
    moment = iso(ahead(hours=1))
    (default,) = post(client, auth, {"timestamps": moment}).get_json()
    call = client.get(f"{URL}{default['id']}/", headers=auth()).get_json()
    assert call["url"].endswith("/default") and call["method"] == "GET"
    assert call["body"] is None and call["history"] == []
    (custom,) = post(
        client,
        auth,
        {
            "timestamps": moment,
            "url": f"{target[1]}/hook",
            "method": "put",
            "headers": {"Authorization": "Bearer secret", "X-Plain": "shown"},
            "body": "raw text",
        },
    ).get_json()
    call = client.get(f"{URL}{custom['id']}/", headers=auth()).get_json()
    assert call["method"] == "PUT" and call["body"] == "raw text"
    assert call["headers"] == {"Authorization": "***", "X-Plain": "shown"}
    assert call["owner"] == "owner-0001" and call["max_attempts"] == 5


# Reading: ownership, filters, pages


def test_a_user_sees_only_their_calls_and_staff_see_all(client: FlaskClient, auth: Auth) -> None:
    moment = iso(ahead(hours=1))
    (mine,) = post(client, auth, {"timestamps": moment}).get_json()
    theirs = client.post(URL, json={"timestamps": moment}, headers=auth(OTHER)).get_json()[0]
    listed = client.get(URL, headers=auth()).get_json()
    assert [call["id"] for call in listed["results"]] == [mine["id"]]
    assert client.get(f"{URL}{theirs['id']}/", headers=auth()).status_code == 404
    assert client.delete(f"{URL}{theirs['id']}/", headers=auth()).status_code == 404
    patched = client.patch(f"{URL}{theirs['id']}/", json={"timestamp": moment}, headers=auth())
    assert patched.status_code == 404
    staff = auth(STAFF, role="staff")
    assert client.get(URL, headers=staff).get_json()["count"] == 2
    assert client.get(f"{URL}{theirs['id']}/", headers=staff).status_code == 200
    only = client.get(f"{URL}?owner={OTHER}", headers=staff).get_json()
    assert [call["id"] for call in only["results"]] == [theirs["id"]]


@pytest.mark.parametrize("call_id", ["999", "99999999999999999999", "0"])
def test_unknown_calls_are_404(client: FlaskClient, auth: Auth, call_id: str) -> None:
    response = client.get(f"{URL}{call_id}/", headers=auth())
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_filters_and_pages(client: FlaskClient, auth: Auth) -> None:
    base = ahead(hours=1)
    moments = [base + timedelta(minutes=minute) for minute in range(5)]
    created = post(client, auth, {"timestamps": [iso(moment) for moment in moments]}).get_json()
    client.delete(f"{URL}{created[0]['id']}/", headers=auth())
    pending = client.get(f"{URL}?status=Pending", headers=auth()).get_json()
    assert pending["count"] == 4
    window = client.get(
        f"{URL}?since={iso(moments[1])}&until={iso(moments[3])}", headers=auth()
    ).get_json()
    assert [call["timestamp"] for call in window["results"]] == [iso(m) for m in moments[1:3]]
    first = client.get(f"{URL}?page_size=2&status=Pending", headers=auth()).get_json()
    assert first["count"] == 4 and len(first["results"]) == 2 and first["previous"] is None
    assert "page=2" in first["next"] and "status=Pending" in first["next"]
    second = client.get(first["next"], headers=auth()).get_json()
    assert [call["id"] for call in second["results"]] == [c["id"] for c in created[3:5]]
    newest = client.get(f"{URL}?ordering=-timestamp&page_size=1", headers=auth()).get_json()
    assert newest["results"][0]["id"] == created[4]["id"]


@pytest.mark.parametrize(
    "query", ["page_size=101", "page=0", "status=Done", "since=yesterday", "ordering=owner"]
)
def test_bad_listing_queries(client: FlaskClient, auth: Auth, query: str) -> None:
    response = client.get(f"{URL}?{query}", headers=auth())
    assert response.status_code == 400
    assert response.get_json()["code"] == "validation_error"


# Changing: cancel and reschedule


def set_status(app: Flask, call_id: int, status: str) -> None:
    with app.app_context():
        db.session.get(ScheduledCall, call_id).status = status
        db.session.commit()


def test_cancel_a_pending_call(
    app: Flask, client: FlaskClient, auth: Auth, redis_client: redis.Redis
) -> None:
    (call,) = post(client, auth, {"timestamps": iso(ahead(hours=1))}).get_json()
    response = client.delete(f"{URL}{call['id']}/", headers=auth())
    assert response.status_code == 200
    assert response.get_json()["status"] == "Cancelled"
    assert response.get_json()["finished_at"] is not None
    assert not Job.exists(str(call["id"]), connection=redis_client)
    again = client.delete(f"{URL}{call['id']}/", headers=auth())
    assert again.status_code == 200 and again.get_json()["status"] == "Cancelled"


@pytest.mark.parametrize("status", ["Running", "Succeeded", "Failed"])
def test_a_call_that_ran_cannot_be_cancelled_or_moved(
    app: Flask, client: FlaskClient, auth: Auth, status: str
) -> None:
    (call,) = post(client, auth, {"timestamps": iso(ahead(hours=1))}).get_json()
    set_status(app, call["id"], status)
    cancelled = client.delete(f"{URL}{call['id']}/", headers=auth())
    assert cancelled.status_code == 409
    assert cancelled.get_json()["status"] == status
    moved = client.patch(
        f"{URL}{call['id']}/", json={"timestamp": iso(ahead(hours=2))}, headers=auth()
    )
    assert moved.status_code == 409
    assert client.get(f"{URL}{call['id']}/", headers=auth()).get_json()["status"] == status


def test_reschedule_a_pending_call(
    app: Flask, client: FlaskClient, auth: Auth, redis_client: redis.Redis
) -> None:
    (call,) = post(client, auth, {"timestamps": iso(ahead(hours=1))}).get_json()
    later = ahead(hours=5)
    response = client.patch(f"{URL}{call['id']}/", json={"timestamp": iso(later)}, headers=auth())
    assert response.status_code == 200
    assert response.get_json()["timestamp"] == iso(later)
    assert response.get_json()["next_attempt_at"] == iso(later)
    job = Job.fetch(str(call["id"]), connection=redis_client, serializer=JSONSerializer)
    assert job.args == [call["id"], int(later.timestamp()) * 1_000_000]
    registry = Queue("scheduler", connection=redis_client).scheduled_job_registry
    assert registry.get_job_ids() == [str(call["id"])]
    lead = settings_of(app).handoff_lead
    assert registry.get_scheduled_time(job).timestamp() == int(later.timestamp() - lead)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"timestamp": "2020-01-01T00:00:00Z"}, "invalid_timestamps"),
        ({"timestamp": "2030-02-30T10:00:00"}, "invalid_timestamps"),
        ({"timestamp": None}, "validation_error"),
        ({}, "validation_error"),
        ({"timestamp": "2031-01-01T00:00:00Z", "url": "http://x"}, "validation_error"),
    ],
)
def test_bad_reschedules(client: FlaskClient, auth: Auth, body: dict[str, Any], code: str) -> None:
    (call,) = post(client, auth, {"timestamps": iso(ahead(hours=1))}).get_json()
    response = client.patch(f"{URL}{call['id']}/", json=body, headers=auth())
    assert response.status_code == 400
    assert response.get_json()["code"] == code
    unchanged = client.get(f"{URL}{call['id']}/", headers=auth()).get_json()
    assert unchanged["timestamp"] == call["timestamp"]
