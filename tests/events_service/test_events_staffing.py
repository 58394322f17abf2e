"""Organisers and volunteers of an event: who reads and changes them, with users checked
with a real auth_service."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from events_service.models import Event, Organiser, Volunteer, db
from events_service.staffing import service
from events_service.staffing.schemas import MAX_TASKS, TASK_LENGTH
from tests.real_auth import AuthServer, User


def add_event(app: Flask, name: str = "Hackathon") -> str:
    """An event row (the events domain's routes are not needed here); its publicId."""
    public_id = secrets.token_hex(8)
    with app.app_context():
        db.session.add(
            Event(
                public_id=public_id,
                name=name,
                name_key=name.casefold(),
                date=date(2030, 1, 15),
                time=time(10, 0),
            )
        )
        db.session.commit()
    return public_id


def count(app: Flask, model: type[Organiser] | type[Volunteer]) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def event_id(app: Flask) -> str:
    return add_event(app)


def organisers_url(event_id: str, username: str | None = None) -> str:
    return f"/events/{event_id}/organisers" + (f"/{username}" if username else "")


def volunteers_url(event_id: str, username: str | None = None) -> str:
    return f"/events/{event_id}/volunteers" + (f"/{username}" if username else "")


# Organisers


def test_organisers_are_listed_in_the_order_they_were_added(
    client: FlaskClient, event_id: str, staff: User, alice: User, bob: User, carol: User
) -> None:
    url = organisers_url(event_id)
    assert client.get(url, headers=alice.headers).get_json() == []

    client.post(url, json={"username": "bob", "role": "Head"}, headers=staff.headers)
    client.post(url, json={"username": "carol", "role": "Member"}, headers=staff.headers)
    added = client.post(url, json={"username": "alice", "role": " Lead "}, headers=staff.headers)

    expected = [
        {"username": "bob", "role": "Head"},
        {"username": "carol", "role": "Member"},
        {"username": "alice", "role": "Lead"},
    ]
    assert added.status_code == 201
    assert added.get_json() == expected
    for path in (url, url + "/"):
        listed = client.get(path, headers=alice.headers)
        assert (listed.status_code, listed.get_json()) == (200, expected)


def test_adding_an_organiser_again_changes_their_role_in_place(
    client: FlaskClient, event_id: str, staff: User, alice: User, bob: User
) -> None:
    url = organisers_url(event_id)
    client.post(url, json={"username": "alice", "role": "Member"}, headers=staff.headers)
    client.post(url, json={"username": "bob", "role": "Member"}, headers=staff.headers)

    again = client.post(
        url + "/", json={"username": "alice", "role": "Head"}, headers=staff.headers
    )

    assert again.status_code == 201
    assert again.get_json() == [
        {"username": "alice", "role": "Head"},
        {"username": "bob", "role": "Member"},
    ]


def test_an_organiser_is_removed(
    app: Flask, client: FlaskClient, event_id: str, staff: User, alice: User, bob: User
) -> None:
    url = organisers_url(event_id)
    client.post(url, json={"username": "alice", "role": "Head"}, headers=staff.headers)
    client.post(url, json={"username": "bob", "role": "Member"}, headers=staff.headers)

    removed = client.delete(organisers_url(event_id, "alice"), headers=staff.headers)
    slash = client.delete(organisers_url(event_id, "bob") + "/", headers=staff.headers)
    again = client.delete(organisers_url(event_id, "alice"), headers=staff.headers)

    assert (removed.status_code, removed.data) == (204, b"")
    assert slash.status_code == 204
    assert again.status_code == 404
    assert again.get_json()["code"] == "not_found"
    assert count(app, Organiser) == 0


def test_an_unknown_or_disabled_user_is_refused_naming_them(
    app: Flask, client: FlaskClient, event_id: str, staff: User, auth: AuthServer
) -> None:
    auth.add_user("dave")
    auth.disable("dave")

    for name in ("ghost", "dave"):
        refused = client.post(
            organisers_url(event_id), json={"username": name, "role": "Head"}, headers=staff.headers
        )
        assert refused.status_code == 422
        assert name in refused.get_json()["error"]
        assert name in refused.get_json()["errors"]["username"]
    assert count(app, Organiser) == 0


def test_an_unknown_event_is_404(client: FlaskClient, staff: User, alice: User) -> None:
    missing = "no-such-event"
    answers = [
        client.get(organisers_url(missing), headers=alice.headers),
        client.post(
            organisers_url(missing), json={"username": "alice", "role": "x"}, headers=staff.headers
        ),
        client.delete(organisers_url(missing, "alice"), headers=staff.headers),
        client.get(volunteers_url(missing), headers=alice.headers),
        client.post(volunteers_url(missing), json={"username": "alice"}, headers=staff.headers),
        client.put(volunteers_url(missing, "alice"), json={"task": []}, headers=staff.headers),
        client.delete(volunteers_url(missing, "alice"), headers=staff.headers),
    ]
    for answer in answers:
        assert (answer.status_code, answer.get_json()["error"]) == (404, "no such event")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "Head"}, "username"),
        ({"username": "alice"}, "role"),
        ({"username": "alice", "role": "   "}, "role"),
        ({"username": "alice", "role": ""}, "role"),
        ({"username": "alice", "role": "x" * 101}, "role"),
        ({"username": "alice", "role": 7}, "role"),
        ({"username": "alice", "role": ["Head"]}, "role"),
        ({"username": 12, "role": "Head"}, "username"),
        ({"username": None, "role": "Head"}, "username"),
        ({"username": " ", "role": "Head"}, "username"),
        ({"username": "a" * 151, "role": "Head"}, "username"),
        ({"username": "alice", "role": "Head", "admin": True}, "admin"),
    ],
)
def test_bad_organiser_input_is_400_naming_the_field(
    app: Flask,
    client: FlaskClient,
    event_id: str,
    staff: User,
    alice: User,
    body: dict[str, Any],
    field: str,
) -> None:
    refused = client.post(organisers_url(event_id), json=body, headers=staff.headers)

    assert refused.status_code == 400
    assert field in refused.get_json()["errors"]
    assert count(app, Organiser) == 0


@pytest.mark.parametrize(
    ("data", "content_type", "code"),
    [
        ("[1, 2]", "application/json", 400),
        ("{", "application/json", 400),
        ("[" * 10_000, "application/json", 400),
        ('{"username": "alice", "role": ' + "9" * 5000 + "}", "application/json", 400),
        ("", "application/json", 400),
    ],
)
def test_a_body_that_is_no_object_is_400(
    app: Flask,
    client: FlaskClient,
    event_id: str,
    staff: User,
    data: str,
    content_type: str,
    code: int,
) -> None:
    for url in (organisers_url(event_id), volunteers_url(event_id)):
        refused = client.post(url, data=data, content_type=content_type, headers=staff.headers)
        assert refused.status_code == code, url
        assert refused.is_json
    changed = client.put(
        volunteers_url(event_id, "alice"),
        data=data,
        content_type=content_type,
        headers=staff.headers,
    )
    assert changed.status_code == 400
    assert count(app, Organiser) == count(app, Volunteer) == 0


def test_auth_service_down_is_503_and_nothing_is_stored(
    make_app: Callable[..., Flask], dead_url: str, staff: User
) -> None:
    app = make_app(AUTH_SERVICE_URL=dead_url)
    event_id = add_event(app)
    client = app.test_client()

    organiser = client.post(
        organisers_url(event_id), json={"username": "alice", "role": "Head"}, headers=staff.headers
    )
    volunteer = client.post(
        volunteers_url(event_id), json={"username": "alice", "task": ["x"]}, headers=staff.headers
    )

    for answer in (organiser, volunteer):
        assert answer.status_code == 503
        assert answer.get_json()["code"] == "service_unavailable"
        assert answer.headers["Retry-After"]
    assert count(app, Organiser) == count(app, Volunteer) == 0
    # Reads need no directory.
    assert client.get(organisers_url(event_id), headers=staff.headers).status_code == 200


def test_an_event_has_a_bounded_number_of_each(
    app: Flask,
    client: FlaskClient,
    event_id: str,
    staff: User,
    alice: User,
    bob: User,
    carol: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "MAX_PER_EVENT", 2)
    for url, extra in ((organisers_url(event_id), {"role": "x"}), (volunteers_url(event_id), {})):
        assert (
            client.post(url, json={"username": "alice", **extra}, headers=staff.headers).status_code
            == 201
        )
        assert (
            client.post(url, json={"username": "bob", **extra}, headers=staff.headers).status_code
            == 201
        )

        full = client.post(url, json={"username": "carol", **extra}, headers=staff.headers)
        again = client.post(url, json={"username": "bob", **extra}, headers=staff.headers)

        assert full.status_code == 422
        assert full.get_json()["code"] == "too_many"
        assert "at most 2" in full.get_json()["error"]
        assert again.status_code == 201  # a change, not one more
    assert count(app, Organiser) == count(app, Volunteer) == 2


# Volunteers


def test_volunteers_are_added_with_their_tasks(
    client: FlaskClient, event_id: str, staff: User, alice: User, bob: User
) -> None:
    url = volunteers_url(event_id)

    first = client.post(
        url,
        json={"username": "bob", "task": ["Arrange Rooms", " Take Attendance "]},
        headers=staff.headers,
    )
    second = client.post(url + "/", json={"username": "alice"}, headers=staff.headers)

    expected = [
        {"username": "bob", "task": ["Arrange Rooms", "Take Attendance"]},
        {"username": "alice", "task": []},
    ]
    assert first.status_code == 201
    assert first.get_json() == expected[:1]
    assert (second.status_code, second.get_json()) == (201, expected)
    for path in (url, url + "/"):
        assert client.get(path, headers=alice.headers).get_json() == expected


def test_adding_a_volunteer_again_replaces_their_tasks(
    app: Flask, client: FlaskClient, event_id: str, staff: User, alice: User
) -> None:
    url = volunteers_url(event_id)
    client.post(url, json={"username": "alice", "task": ["a", "b"]}, headers=staff.headers)

    again = client.post(url, json={"username": "alice", "task": ["c"]}, headers=staff.headers)

    assert (again.status_code, again.get_json()) == (201, [{"username": "alice", "task": ["c"]}])
    assert count(app, Volunteer) == 1


def test_a_volunteers_tasks_are_changed(
    client: FlaskClient, event_id: str, staff: User, alice: User
) -> None:
    client.post(
        volunteers_url(event_id), json={"username": "alice", "task": ["a"]}, headers=staff.headers
    )

    changed = client.put(
        volunteers_url(event_id, "alice"), json={"task": ["Task1", "Task2"]}, headers=staff.headers
    )
    slash = client.put(
        volunteers_url(event_id, "alice") + "/", json={"task": []}, headers=staff.headers
    )

    assert changed.status_code == 200
    assert changed.get_json() == {
        "eventid": event_id,
        "volunteer": "alice",
        "task": ["Task1", "Task2"],
    }
    assert slash.get_json() == {"eventid": event_id, "volunteer": "alice", "task": []}
    listed = client.get(volunteers_url(event_id), headers=alice.headers).get_json()
    assert listed == [{"username": "alice", "task": []}]


def test_a_volunteer_is_removed(
    app: Flask, client: FlaskClient, event_id: str, staff: User, alice: User
) -> None:
    client.post(volunteers_url(event_id), json={"username": "alice"}, headers=staff.headers)

    removed = client.delete(volunteers_url(event_id, "alice") + "/", headers=staff.headers)
    again = client.delete(volunteers_url(event_id, "alice"), headers=staff.headers)
    changed = client.put(
        volunteers_url(event_id, "alice"), json={"task": ["x"]}, headers=staff.headers
    )

    assert (removed.status_code, removed.data) == (204, b"")
    assert (again.status_code, changed.status_code) == (404, 404)
    assert again.get_json()["error"] == "no such volunteer of this event"
    assert count(app, Volunteer) == 0


def test_an_organiser_is_no_volunteer(
    client: FlaskClient, event_id: str, staff: User, alice: User
) -> None:
    """The two lists are apart: one's name is unknown to the other's routes."""
    client.post(
        organisers_url(event_id), json={"username": "alice", "role": "x"}, headers=staff.headers
    )

    assert (
        client.delete(volunteers_url(event_id, "alice"), headers=staff.headers).status_code == 404
    )
    assert client.get(volunteers_url(event_id), headers=staff.headers).get_json() == []


def test_the_lists_are_per_event(
    app: Flask, client: FlaskClient, event_id: str, staff: User, alice: User
) -> None:
    other = add_event(app, "Quiz")
    client.post(
        organisers_url(event_id), json={"username": "alice", "role": "x"}, headers=staff.headers
    )

    assert client.get(organisers_url(other), headers=staff.headers).get_json() == []
    assert client.delete(organisers_url(other, "alice"), headers=staff.headers).status_code == 404


@pytest.mark.parametrize(
    "task",
    [
        "Arrange Rooms",
        {"a": "b"},
        7,
        None,
        [1],
        [["nested"]],
        [""],
        ["   "],
        ["x" * (TASK_LENGTH + 1)],
        ["x"] * (MAX_TASKS + 1),
    ],
)
def test_bad_tasks_are_400_naming_task(
    app: Flask, client: FlaskClient, event_id: str, staff: User, alice: User, task: Any
) -> None:
    added = client.post(
        volunteers_url(event_id), json={"username": "alice", "task": task}, headers=staff.headers
    )
    assert added.status_code == 400
    assert any(key.startswith("task") for key in added.get_json()["errors"]), added.get_json()
    assert count(app, Volunteer) == 0

    client.post(
        volunteers_url(event_id),
        json={"username": "alice", "task": ["kept"]},
        headers=staff.headers,
    )
    changed = client.put(
        volunteers_url(event_id, "alice"), json={"task": task}, headers=staff.headers
    )
    assert changed.status_code == 400
    assert any(key.startswith("task") for key in changed.get_json()["errors"])
    listed = client.get(volunteers_url(event_id), headers=staff.headers).get_json()
    assert listed == [{"username": "alice", "task": ["kept"]}]


def test_the_most_tasks_and_the_longest_are_accepted(
    client: FlaskClient, event_id: str, staff: User, alice: User
) -> None:
    tasks = ["x" * TASK_LENGTH] * MAX_TASKS

    added = client.post(
        volunteers_url(event_id), json={"username": "alice", "task": tasks}, headers=staff.headers
    )

    assert added.status_code == 201
    assert added.get_json()[0]["task"] == tasks


def test_a_change_of_tasks_needs_the_task_key(
    client: FlaskClient, event_id: str, staff: User, alice: User
) -> None:
    client.post(volunteers_url(event_id), json={"username": "alice"}, headers=staff.headers)

    missing = client.put(volunteers_url(event_id, "alice"), json={}, headers=staff.headers)

    assert missing.status_code == 400
    assert "task" in missing.get_json()["errors"]


# Who may


def routes(event_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every staffing route: method, path, body."""
    return [
        ("GET", organisers_url(event_id), None),
        ("POST", organisers_url(event_id), {"username": "bob", "role": "Head"}),
        ("DELETE", organisers_url(event_id, "bob"), None),
        ("GET", volunteers_url(event_id), None),
        ("POST", volunteers_url(event_id), {"username": "bob", "task": ["x"]}),
        ("PUT", volunteers_url(event_id, "bob"), {"task": ["y"]}),
        ("DELETE", volunteers_url(event_id, "bob"), None),
    ]


def call(client: FlaskClient, method: str, path: str, body: Any, user: User | None) -> int:
    headers = user.headers if user else {}
    return client.open(path, method=method, json=body, headers=headers).status_code


SUCCESS = [200, 201, 204, 200, 201, 200, 204]
READ_ONLY = [200, 403, 403, 200, 403, 403, 403]


def test_anonymous_callers_are_401_everywhere(
    client: FlaskClient, event_id: str, bob: User
) -> None:
    for method, path, body in routes(event_id):
        assert call(client, method, path, body, None) == 401, (method, path)
        assert call(client, method, path + "/", body, None) == 401, (method, path)


def test_a_normal_user_reads_only(
    app: Flask, client: FlaskClient, event_id: str, alice: User, bob: User, staff: User
) -> None:
    # bob is an organiser and a volunteer, so refusals are not 404s.
    client.post(
        organisers_url(event_id), json={"username": "bob", "role": "x"}, headers=staff.headers
    )
    client.post(volunteers_url(event_id), json={"username": "bob"}, headers=staff.headers)

    answers = [call(client, m, p, b, alice) for m, p, b in routes(event_id)]

    assert answers == READ_ONLY
    assert [call(client, m, p, b, bob) for m, p, b in routes(event_id)] == READ_ONLY
    assert client.get(volunteers_url(event_id), headers=alice.headers).get_json() == [
        {"username": "bob", "task": []}
    ]


@pytest.mark.parametrize(
    ("privileges", "expected"),
    [({"event": "crd"}, READ_ONLY), ({}, READ_ONLY), ({"event": "u"}, SUCCESS)],
)
def test_staff_change_the_lists_with_the_event_update_privilege(
    client: FlaskClient,
    event_id: str,
    auth: AuthServer,
    bob: User,
    staff: User,
    privileges: dict[str, str],
    expected: list[int],
) -> None:
    client.post(
        organisers_url(event_id), json={"username": "bob", "role": "x"}, headers=staff.headers
    )
    client.post(volunteers_url(event_id), json={"username": "bob"}, headers=staff.headers)
    member = auth.add_user("staff_2", role="staff", priv=privileges)

    answers = [call(client, m, p, b, member) for m, p, b in routes(event_id)]

    assert answers == expected


def test_a_superuser_may_do_everything(
    client: FlaskClient, event_id: str, superuser: User, bob: User
) -> None:
    answers = [call(client, m, p, b, superuser) for m, p, b in routes(event_id)]

    assert answers == SUCCESS


def test_a_refused_caller_changes_nothing(
    app: Flask, client: FlaskClient, event_id: str, alice: User, bob: User
) -> None:
    for method, path, body in routes(event_id):
        call(client, method, path, body, alice)

    assert count(app, Organiser) == count(app, Volunteer) == 0
