"""Events: created, edited and deleted by staff with the event privilege, read by anyone,
listed (filtered, ordered, paged) for signed-in users."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select

from events_service.models import (
    CONFIRMED,
    PAYMENT_PENDING,
    WAITING,
    Event,
    Organiser,
    Registration,
    db,
    event_categories,
)
from tests.events_service.events_fixtures import (
    add_catalogue,
    create_event,
    document_event,
)
from tests.real_auth import AuthServer, User

CREATED_KEYS = {
    "publicId",
    "name",
    "description",
    "date",
    "time",
    "venue",
    "fees",
    "prize",
    "teamEvent",
    "minSize",
    "maxSize",
    "rules",
    "faq",
    "category",
    "tags",
    "capacity",
    "registrationOpens",
    "registrationCloses",
}
SINGLE: dict[str, Any] = {"teamEvent": False, "minSize": None, "maxSize": None}


@pytest.fixture(autouse=True)
def catalogue(client: FlaskClient, staff: User) -> None:
    add_catalogue(client, staff)


def stored_events(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Event)) or 0)


# Create


@pytest.mark.parametrize("slash", ["", "/"])
def test_staff_create_the_document_s_event(client: FlaskClient, staff: User, slash: str) -> None:
    response = client.post(f"/events{slash}", json=document_event(), headers=staff.headers)

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == CREATED_KEYS
    public_id = body.pop("publicId")
    assert len(public_id) == 16
    assert body == {
        **document_event(),
        "fees": 300,
        "capacity": None,
        "registrationOpens": None,
        "registrationCloses": None,
    }


def test_the_created_event_reads_in_the_document_s_detail_shape(
    client: FlaskClient, staff: User
) -> None:
    public_id = create_event(client, staff)["publicId"]

    response = client.get(f"/events/{public_id}")  # no token

    assert response.status_code == 200
    expected = {**document_event(), "fees": 300, "publicId": public_id}
    del expected["minSize"], expected["maxSize"]
    assert response.get_json() == {
        **expected,
        "teamEventProperties": {"minSize": 3, "maxSize": 8},
        "eventPicture": None,
        "eventLogo": None,
        "capacity": None,
        "registrationOpens": None,
        "registrationCloses": None,
    }
    assert client.get(f"/events/{public_id}/").status_code == 200


def test_public_ids_differ(client: FlaskClient, staff: User) -> None:
    ids = {create_event(client, staff)["publicId"] for _ in range(5)}

    assert len(ids) == 5


def test_an_event_without_categories_is_in_others(client: FlaskClient, staff: User) -> None:
    created = create_event(client, staff, category=None, tags=None)
    empty = create_event(client, staff, category=[], tags=[])

    assert (created["category"], created["tags"]) == (["Others"], [])
    assert (empty["category"], empty["tags"]) == (["Others"], [])


def test_only_the_required_keys(client: FlaskClient, staff: User) -> None:
    body = {"name": "Quiz", "date": "2030-01-02", "time": "18:00"}

    created = client.post("/events", json=body, headers=staff.headers).get_json()

    assert created == {
        **body,
        "publicId": created["publicId"],
        "description": "",
        "venue": "",
        "fees": 0,
        "prize": [],
        "teamEvent": False,
        "minSize": 1,
        "maxSize": 1,
        "rules": [],
        "faq": [],
        "category": ["Others"],
        "tags": [],
        "capacity": None,
        "registrationOpens": None,
        "registrationCloses": None,
    }


def test_category_and_tag_names_match_ignoring_case_and_answer_as_stored(
    client: FlaskClient, staff: User
) -> None:
    created = create_event(client, staff, category=[" coding", "CODING"], tags=["prime event"])

    assert (created["category"], created["tags"]) == (["Coding"], ["Prime Event"])


@pytest.mark.parametrize(
    ("fees", "stored"),
    [
        ("Rs 300", 300),
        ("300", 300),
        ("rs. 300/-", 300),
        ("INR 250.50", 250.5),
        ("₹99", 99),
        ("Free", 0),
        ("", 0),
        (300, 300),
        (300.5, 300.5),
        (0, 0),
    ],
)
def test_fees_are_a_number_or_a_text_and_answer_as_a_number(
    client: FlaskClient, staff: User, fees: Any, stored: float
) -> None:
    created = create_event(client, staff, fees=fees)

    assert created["fees"] == stored
    assert client.get(f"/events/{created['publicId']}").get_json()["fees"] == stored


def test_a_single_event_has_sizes_of_one(client: FlaskClient, staff: User) -> None:
    created = create_event(client, staff, teamEvent=False, minSize=None, maxSize=None)

    assert (created["minSize"], created["maxSize"]) == (1, 1)


def test_sizes_may_come_nested_as_in_the_edit_payload(client: FlaskClient, staff: User) -> None:
    created = create_event(
        client, staff, minSize=None, maxSize=None, teamProperties={"minSize": 2, "maxSize": 4}
    )

    assert (created["minSize"], created["maxSize"]) == (2, 4)


def test_capacity_and_the_registration_window(client: FlaskClient, staff: User) -> None:
    created = create_event(
        client,
        staff,
        capacity=100,
        registrationOpens="2019-09-01T09:00:00+05:30",
        registrationCloses="2019-09-20T00:00:00Z",
    )

    assert created["capacity"] == 100
    assert created["registrationOpens"] == "2019-09-01T03:30:00+00:00"
    assert created["registrationCloses"] == "2019-09-20T00:00:00+00:00"


BAD_EVENTS: list[tuple[dict[str, Any], str]] = [
    ({"name": None}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "n" * 201}, "name"),
    ({"name": 7}, "name"),
    ({"date": None}, "date"),
    ({"date": "2019-02-30"}, "date"),
    ({"date": "24-09-2019"}, "date"),
    ({"date": "2019-9-4"}, "date"),
    ({"date": 20190924}, "date"),
    ({"time": None}, "time"),
    ({"time": "24:00"}, "time"),
    ({"time": "09:60"}, "time"),
    ({"time": "9:30"}, "time"),
    ({"time": "09:30:00"}, "time"),
    ({"description": 5}, "description"),
    ({"description": "d" * 10_001}, "description"),
    ({"venue": ["Lab"]}, "venue"),
    ({"fees": -1}, "fees"),
    ({"fees": "Rs -300"}, "fees"),
    ({"fees": "three hundred"}, "fees"),
    ({"fees": 300.555}, "fees"),
    ({"fees": True}, "fees"),
    ({"fees": None}, "fees"),
    ({"fees": 10**12}, "fees"),
    ({"fees": [300]}, "fees"),
    ({"prize": "First"}, "prize"),
    ({"prize": [1, 2]}, "prize[0]"),
    ({"prize": ["p"] * 51}, "prize"),
    ({"prize": ["p" * 2001]}, "prize[0]"),
    ({"teamEvent": "yes"}, "teamEvent"),
    ({"teamEvent": 1}, "teamEvent"),
    ({"minSize": 0}, "minSize"),
    ({"minSize": "3"}, "minSize"),
    ({"minSize": 3.5}, "minSize"),
    ({"minSize": True}, "minSize"),
    ({"maxSize": 101}, "maxSize"),  # over EVENTS_MAX_TEAM_SIZE
    ({"minSize": 9, "maxSize": 8}, "minSize"),
    ({"minSize": None}, "minSize"),  # a team event says how large its teams are
    ({"teamEvent": False, "minSize": 3, "maxSize": 8}, "minSize"),
    ({"teamProperties": {"minSize": 2}, "minSize": 3}, "minSize"),
    ({"teamProperties": {"minSize": "x"}}, "teamProperties.minSize"),
    ({"teamProperties": [1, 2]}, "teamProperties"),
    ({"rules": [["nested"]]}, "rules[0]"),
    ({"faq": [["only a question"]]}, "faq[0]"),
    ({"faq": [["q", "a", "b"]]}, "faq[0]"),
    ({"faq": [["q", 5]]}, "faq[0][1]"),
    ({"faq": "q"}, "faq"),
    ({"category": "Coding"}, "category"),
    ({"category": [5]}, "category[0]"),
    ({"category": ["c"] * 21}, "category"),
    ({"tags": [None]}, "tags[0]"),
    ({"capacity": -1}, "capacity"),
    ({"capacity": 1_000_001}, "capacity"),
    ({"capacity": "10"}, "capacity"),
    ({"registrationOpens": "2019-09-01T09:00:00"}, "registrationOpens"),  # no zone
    ({"registrationOpens": "tomorrow"}, "registrationOpens"),
    (
        {
            "registrationOpens": "2019-09-20T00:00:00Z",
            "registrationCloses": "2019-09-01T00:00:00Z",
        },
        "registrationCloses",
    ),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_EVENTS)
def test_bad_input_is_400_naming_the_field_and_stores_nothing(
    app: Flask, client: FlaskClient, staff: User, overrides: dict[str, Any], field: str
) -> None:
    body = document_event()
    body.update(overrides)
    body = {key: value for key, value in body.items() if value is not None or key == "fees"}

    response = client.post("/events", json=body, headers=staff.headers)

    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()
    assert stored_events(app) == 0


@pytest.mark.parametrize(
    ("field", "names", "code", "message"),
    [
        (
            "category",
            ["Coding", "Quiz", "Art"],
            "unknown_category",
            "no such category: 'Quiz', 'Art'",
        ),
        ("tags", ["Free"], "unknown_tag", "no such tag: 'Free'"),
        ("category", [""], "unknown_category", "no such category: ''"),
    ],
)
def test_unknown_categories_or_tags_are_422_naming_them(
    app: Flask,
    client: FlaskClient,
    staff: User,
    field: str,
    names: list[str],
    code: str,
    message: str,
) -> None:
    response = client.post("/events", json=document_event(**{field: names}), headers=staff.headers)

    assert response.status_code == 422
    body = response.get_json()
    assert (body["code"], body["error"]) == (code, message)
    assert field in body["errors"]
    assert stored_events(app) == 0


@pytest.mark.parametrize(
    "raw",
    [b"[" * 10_000 + b"]" * 10_000, b'{"name": ' + b"9" * 5000 + b"}", b"{nope"],
    ids=["deep", "huge-integer", "malformed"],
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_bodies_that_are_not_json_are_400_invalid_json(
    app: Flask, client: FlaskClient, staff: User, raw: bytes, method: str
) -> None:
    public_id = create_event(client, staff)["publicId"]
    path = "/events" if method == "POST" else f"/events/{public_id}"

    response = client.open(
        path, method=method, data=raw, content_type="application/json", headers=staff.headers
    )

    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_json"
    assert stored_events(app) == 1


def test_a_json_array_body_is_400(client: FlaskClient, staff: User) -> None:
    response = client.post("/events", json=[document_event()], headers=staff.headers)

    assert response.status_code == 400


# Read


def test_an_unknown_event_is_404(client: FlaskClient, staff: User) -> None:
    for path in ("/events/nothing", "/events/" + "x" * 300):
        response = client.get(path)
        assert response.status_code == 404
        assert response.get_json() == {"error": "no such event", "code": "not_found"}
    assert client.put("/events/nothing", json={}, headers=staff.headers).status_code == 404
    assert client.delete("/events/nothing", headers=staff.headers).status_code == 404


# Edit


def test_staff_edit_with_the_document_s_payload(client: FlaskClient, staff: User) -> None:
    public_id = create_event(client, staff)["publicId"]
    edit = document_event(
        name="Elektra 4.0",
        description="Difficult Questions are waiting for you.",
        minSize=None,
        maxSize=None,
        teamProperties={"minSize": 2, "maxSize": 5},
        category=[],
        fees=450.5,
    )

    response = client.put(f"/events/{public_id}", json=edit, headers=staff.headers)

    assert response.status_code == 202
    body = response.get_json()
    assert body["eventid"] == body["publicId"] == public_id
    assert (body["name"], body["minSize"], body["maxSize"]) == ("Elektra 4.0", 2, 5)
    assert (body["category"], body["fees"]) == (["Others"], 450.5)
    detail = client.get(f"/events/{public_id}").get_json()
    assert detail["teamEventProperties"] == {"minSize": 2, "maxSize": 5}
    assert detail["description"] == "Difficult Questions are waiting for you."


@pytest.mark.parametrize("slash", ["", "/"])
def test_keys_left_out_of_an_edit_keep_their_values(
    client: FlaskClient, staff: User, slash: str
) -> None:
    created = create_event(client, staff, capacity=40)
    public_id = created.pop("publicId")

    response = client.put(
        f"/events/{public_id}{slash}", json={"venue": "Hall 2"}, headers=staff.headers
    )

    assert response.status_code == 202
    body = response.get_json()
    del body["publicId"], body["eventid"]
    assert body == {**created, "venue": "Hall 2"}


def test_sizes_change_flat_or_nested(client: FlaskClient, staff: User) -> None:
    public_id = create_event(client, staff)["publicId"]

    flat = client.put(f"/events/{public_id}", json={"maxSize": 10}, headers=staff.headers)
    nested = client.put(
        f"/events/{public_id}", json={"teamProperties": {"minSize": 4}}, headers=staff.headers
    )

    assert (flat.get_json()["minSize"], flat.get_json()["maxSize"]) == (3, 10)
    assert (nested.get_json()["minSize"], nested.get_json()["maxSize"]) == (4, 10)


def test_a_team_event_becoming_single_gets_sizes_of_one(client: FlaskClient, staff: User) -> None:
    public_id = create_event(client, staff)["publicId"]

    body = client.put(f"/events/{public_id}", json={"teamEvent": False}, headers=staff.headers)

    assert (body.get_json()["minSize"], body.get_json()["maxSize"]) == (1, 1)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"minSize": 9}, "minSize"),  # stored maxSize is 8
        ({"teamProperties": {"maxSize": 2}}, "minSize"),  # stored minSize is 3
        ({"registrationOpens": "2019-09-30T00:00:00Z"}, "registrationCloses"),
        ({"date": "2019-13-01"}, "date"),
        ({"name": None}, "name"),
        ({"fees": "lots"}, "fees"),
        ({"category": ["Quiz"]}, "category"),
        ({"capacity": 10**9}, "capacity"),
    ],
)
def test_a_refused_edit_changes_nothing(
    client: FlaskClient, staff: User, edit: dict[str, Any], field: str
) -> None:
    public_id = create_event(client, staff, registrationCloses="2019-09-20T00:00:00Z")["publicId"]
    before = client.get(f"/events/{public_id}").get_json()

    response = client.put(f"/events/{public_id}", json=edit, headers=staff.headers)

    assert response.status_code in (400, 422)
    assert field in response.get_json()["errors"]
    assert client.get(f"/events/{public_id}").get_json() == before


def registrations_of(app: Flask, public_id: str, statuses: list[str]) -> None:
    """Registrations of single users, as the registrations domain writes them."""
    with app.app_context():
        event = db.session.scalar(select(Event).where(Event.public_id == public_id))
        assert event is not None
        for number, status in enumerate(statuses):
            holds_seat = status != WAITING
            db.session.add(
                Registration(
                    event_id=event.id,
                    user_id=f"user-{number}",
                    username=f"user_{number}",
                    status=status,
                    holds_seat=holds_seat,
                )
            )
            event.seats_taken += holds_seat
        db.session.commit()


def statuses(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Registration.status).order_by(Registration.id)))


def test_more_capacity_seats_the_waiting_list_in_order(
    app: Flask, client: FlaskClient, staff: User
) -> None:
    public_id = create_event(client, staff, **SINGLE, fees="Free", capacity=2)["publicId"]
    registrations_of(app, public_id, [CONFIRMED, CONFIRMED, WAITING, WAITING, WAITING])

    response = client.put(f"/events/{public_id}", json={"capacity": 4}, headers=staff.headers)

    assert response.status_code == 202
    assert response.get_json()["capacity"] == 4
    assert statuses(app) == [CONFIRMED, CONFIRMED, CONFIRMED, CONFIRMED, WAITING]
    unlimited = client.put(f"/events/{public_id}", json={"capacity": None}, headers=staff.headers)
    assert unlimited.get_json()["capacity"] is None
    assert statuses(app) == [CONFIRMED] * 5


def test_seats_given_by_an_edit_follow_the_edit_s_fees(
    app: Flask, client: FlaskClient, staff: User
) -> None:
    public_id = create_event(client, staff, **SINGLE, fees="Free", capacity=1)["publicId"]
    registrations_of(app, public_id, [CONFIRMED, WAITING])

    response = client.put(
        f"/events/{public_id}", json={"capacity": 2, "fees": 100}, headers=staff.headers
    )

    assert response.status_code == 202
    assert statuses(app) == [CONFIRMED, PAYMENT_PENDING]


def test_capacity_below_the_seats_taken_is_refused(
    app: Flask, client: FlaskClient, staff: User
) -> None:
    public_id = create_event(client, staff, **SINGLE, capacity=3)["publicId"]
    registrations_of(app, public_id, [CONFIRMED, CONFIRMED, CONFIRMED])

    response = client.put(
        f"/events/{public_id}", json={"capacity": 2, "venue": "Elsewhere"}, headers=staff.headers
    )

    assert response.status_code == 422
    assert response.get_json() == {
        "error": "capacity 2 is below the 3 seats already taken: cancel registrations first",
        "code": "capacity_below_seats",
        "errors": {"capacity": "at least 3 (seats taken)"},
    }
    detail = client.get(f"/events/{public_id}").get_json()
    assert (detail["capacity"], detail["venue"]) == (3, "Computer Lab")
    assert (
        client.put(f"/events/{public_id}", json={"capacity": 3}, headers=staff.headers).status_code
        == 202
    )


def test_a_registered_event_stays_single_or_team(
    app: Flask, client: FlaskClient, staff: User
) -> None:
    public_id = create_event(client, staff, **SINGLE)["publicId"]
    registrations_of(app, public_id, [CONFIRMED])

    response = client.put(
        f"/events/{public_id}",
        json={"teamEvent": True, "minSize": 2, "maxSize": 4},
        headers=staff.headers,
    )

    assert response.status_code == 422
    assert response.get_json()["code"] == "has_registrations"
    assert client.get(f"/events/{public_id}").get_json()["teamEvent"] is False


# Delete


@pytest.mark.parametrize("slash", ["", "/"])
def test_deleting_an_event_takes_everything_hanging_off_it(
    app: Flask, client: FlaskClient, staff: User, slash: str
) -> None:
    public_id = create_event(client, staff, **SINGLE)["publicId"]
    kept = create_event(client, staff)["publicId"]
    registrations_of(app, public_id, [CONFIRMED])
    with app.app_context():
        event_id = db.session.scalar(select(Event.id).where(Event.public_id == public_id))
        db.session.add(Organiser(event_id=event_id, user_id="u", username="u", role="Head"))
        db.session.commit()

    response = client.delete(f"/events/{public_id}{slash}", headers=staff.headers)

    assert response.status_code == 200
    assert response.get_json() == {"message": "Event deleted"}
    assert client.get(f"/events/{public_id}").status_code == 404
    assert client.get(f"/events/{kept}").status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Registration)) == 0
        assert db.session.scalar(select(func.count()).select_from(Organiser)) == 0
        links = select(func.count()).select_from(event_categories)
        assert db.session.scalar(links) == 2  # the kept event's
    # The categories it used may go now that no event uses them... but the kept one does.
    assert client.delete("/events/category/Coding", headers=staff.headers).status_code == 422


# Who may do what


def call(client: FlaskClient, method: str, public_id: str, headers: dict[str, str]) -> Any:
    if method == "POST":
        return client.post("/events", json=document_event(), headers=headers)
    if method == "PUT":
        return client.put(f"/events/{public_id}", json={"venue": "Hall"}, headers=headers)
    return client.delete(f"/events/{public_id}", headers=headers)


@pytest.mark.parametrize(
    ("method", "action", "success"), [("POST", "c", 201), ("PUT", "u", 202), ("DELETE", "d", 200)]
)
def test_who_may_write(
    app: Flask,
    client: FlaskClient,
    auth: AuthServer,
    staff: User,
    superuser: User,
    alice: User,
    method: str,
    action: str,
    success: int,
) -> None:
    public_id = create_event(client, staff)["publicId"]
    lacking = auth.add_user("staff_2", role="staff", priv={"event": "crud".replace(action, "")})
    only_it = auth.add_user("staff_3", role="staff", priv={"event": action})

    assert call(client, method, public_id, {}).status_code == 401
    assert call(client, method, public_id, alice.headers).status_code == 403
    assert call(client, method, public_id, lacking.headers).status_code == 403
    assert client.get(f"/events/{public_id}").get_json()["venue"] == "Computer Lab"
    assert stored_events(app) == 1
    assert call(client, method, public_id, only_it.headers).status_code == success
    other = create_event(client, staff)["publicId"]
    assert call(client, method, other, superuser.headers).status_code == success


def test_a_refusal_comes_before_the_body_is_read(client: FlaskClient, alice: User) -> None:
    response = client.post(
        "/events", data=b"{nope", content_type="application/json", headers=alice.headers
    )

    assert response.status_code == 403


# List


@pytest.fixture
def fest(client: FlaskClient, staff: User) -> dict[str, str]:
    """Five events: name -> publicId."""
    events = [
        ("Reverse Coding", "2019-09-21", "17:30", ["Coding", "Hackathon"], ["Begineer"]),
        ("codechef Elektra", "2019-09-24", "09:30", ["Coding", "Contest"], ["Prime Event"]),
        ("Art Wall", "2019-09-24", "08:00", [], []),
        ("Bug Bash", "2019-09-24", "09:30", ["Contest"], ["Special Prizes", "Prime Event"]),
        ("Hack Night", "2019-10-01", "21:00", ["Hackathon"], []),
    ]
    made = {}
    for name, day, start, categories, tags in events:
        body = create_event(
            client, staff, name=name, date=day, time=start, category=categories, tags=tags
        )
        made[name] = body["publicId"]
    return made


def listed(client: FlaskClient, user: User, query: str = "") -> list[str]:
    response = client.get(f"/events{query}", headers=user.headers)
    assert response.status_code == 200, response.get_json()
    return [event["name"] for event in response.get_json()["events"]]


BY_DATE = ["Reverse Coding", "Art Wall", "codechef Elektra", "Bug Bash", "Hack Night"]


def test_signed_in_users_list_events_by_date_then_time(
    client: FlaskClient, alice: User, fest: dict[str, str]
) -> None:
    response = client.get("/events", headers=alice.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert [event["name"] for event in body["events"]] == BY_DATE
    assert (body["pages"], body["currentpage"], body["total"]) == (1, 1, 5)
    first = body["events"][0]
    assert first == {
        "publicId": fest["Reverse Coding"],
        "eventPicture": None,
        "eventLogo": None,
        "name": "Reverse Coding",
        "description": "A 3 hour long competitive coding contest.",
        "date": "2019-09-21",
        "time": "17:30",
        "venue": "Computer Lab",
        "category": ["Coding", "Hackathon"],
        "tags": ["Begineer"],
    }


def test_listing_needs_a_token(client: FlaskClient, fest: dict[str, str]) -> None:
    assert client.get("/events").status_code == 401


def test_the_document_s_empty_query_arguments_mean_the_defaults(
    client: FlaskClient, alice: User, fest: dict[str, str]
) -> None:
    assert listed(client, alice, "?limit&page&category&order&tags") == BY_DATE
    assert listed(client, alice, "/?limit=&page=&category=&order=&tags=") == BY_DATE


@pytest.mark.parametrize(
    ("order", "names"),
    [
        ("date", BY_DATE),
        ("-date", list(reversed(BY_DATE))),
        ("name", ["Art Wall", "Bug Bash", "codechef Elektra", "Hack Night", "Reverse Coding"]),
        ("-name", ["Reverse Coding", "Hack Night", "codechef Elektra", "Bug Bash", "Art Wall"]),
    ],
)
def test_orders(
    client: FlaskClient, alice: User, fest: dict[str, str], order: str, names: list[str]
) -> None:
    assert listed(client, alice, f"?order={order}") == names


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("?category=Coding", ["Reverse Coding", "codechef Elektra"]),
        ("?category=coding", ["Reverse Coding", "codechef Elektra"]),
        ("?category=Others", ["Art Wall"]),
        (
            "?category=Contest,Hackathon",
            ["Reverse Coding", "codechef Elektra", "Bug Bash", "Hack Night"],
        ),
        (
            "?category=Contest&category=Hackathon",
            ["Reverse Coding", "codechef Elektra", "Bug Bash", "Hack Night"],
        ),
        ("?tags=prime%20event", ["codechef Elektra", "Bug Bash"]),
        ("?tags=Begineer,Special%20Prizes", ["Reverse Coding", "Bug Bash"]),
        ("?category=Coding&tags=Prime%20Event", ["codechef Elektra"]),
        ("?category=Nothing", []),
        ("?category=Contest&order=-name", ["codechef Elektra", "Bug Bash"]),
    ],
)
def test_filters(
    client: FlaskClient, alice: User, fest: dict[str, str], query: str, names: list[str]
) -> None:
    assert listed(client, alice, query) == names


def test_pages(client: FlaskClient, alice: User, fest: dict[str, str]) -> None:
    pages = [
        client.get(f"/events?limit=2&page={n}", headers=alice.headers).get_json()
        for n in (1, 2, 3, 4)
    ]

    assert [[e["name"] for e in page["events"]] for page in pages] == [
        BY_DATE[0:2],
        BY_DATE[2:4],
        BY_DATE[4:],
        [],
    ]
    assert [(page["pages"], page["currentpage"], page["total"]) for page in pages] == [
        (3, 1, 5),
        (3, 2, 5),
        (3, 3, 5),
        (3, 4, 5),
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
        ("?page=0", "page"),
        ("?page=1000001", "page"),
        ("?order=date,name", "order"),
        ("?order=venue", "order"),
        ("?tags=" + ",".join(f"t{n}" for n in range(51)), "tags"),
        ("?category=" + "c" * 101, "category[0]"),
    ],
)
def test_bad_list_arguments_are_400(
    client: FlaskClient, alice: User, query: str, field: str
) -> None:
    response = client.get(f"/events{query}", headers=alice.headers)

    assert response.status_code == 400
    assert field in response.get_json()["errors"]


def test_a_page_is_two_queries_and_one_per_collection(
    app: Flask, client: FlaskClient, alice: User, staff: User
) -> None:
    for number in range(12):
        create_event(client, staff, name=f"Event {number}")
    statements: list[str] = []

    def note(*args: Any) -> None:
        statements.append(str(args[2]))

    with app.app_context():
        engine = db.engine
    sqlalchemy_event.listen(engine, "before_cursor_execute", note)
    try:
        response = client.get("/events?limit=10", headers=alice.headers)
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", note)

    assert len(response.get_json()["events"]) == 10
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 4  # COUNT, the page, its categories, its tags


def listed_pages(client: FlaskClient, user: User, query: str) -> tuple[list[str], int, int]:
    response = client.get(f"/events{query}", headers=user.headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return [event["name"] for event in body["events"]], body["total"], body["pages"]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("?category=Nothing,Coding", ["Reverse Coding", "codechef Elektra"]),
        ("?tags=Nothing,begineer", ["Reverse Coding"]),
        ("?category=Coding&tags=Nothing", []),
        ("?category=Nothing&tags=Prime%20Event", []),
    ],
)
def test_unknown_names_in_a_filter_match_nothing_and_the_known_ones_still_match(
    client: FlaskClient, alice: User, fest: dict[str, str], query: str, names: list[str]
) -> None:
    assert listed_pages(client, alice, query) == (names, len(names), 1)


def test_an_event_matching_several_names_is_counted_and_listed_once(
    client: FlaskClient, alice: User, fest: dict[str, str]
) -> None:
    query = "?category=Coding,Contest,Hackathon&tags=Prime%20Event,Special%20Prizes,Begineer"

    assert listed_pages(client, alice, query) == (
        ["Reverse Coding", "codechef Elektra", "Bug Bash"],
        3,
        1,
    )
    assert listed_pages(client, alice, "?category=Coding,Contest") == (
        ["Reverse Coding", "codechef Elektra", "Bug Bash"],
        3,
        1,
    )


@pytest.mark.parametrize(
    ("order", "names"),
    [
        ("date", ["Reverse Coding", "codechef Elektra", "Bug Bash", "Hack Night"]),
        ("-date", ["Hack Night", "Bug Bash", "codechef Elektra", "Reverse Coding"]),
        ("name", ["Bug Bash", "codechef Elektra", "Hack Night", "Reverse Coding"]),
        ("-name", ["Reverse Coding", "Hack Night", "codechef Elektra", "Bug Bash"]),
    ],
)
def test_filtered_pages_follow_the_order_with_the_id_breaking_ties(
    client: FlaskClient, alice: User, fest: dict[str, str], order: str, names: list[str]
) -> None:
    # codechef Elektra and Bug Bash share a date and time: the one created first leads.
    query = f"?category=Contest,Hackathon&order={order}&limit=3"

    assert listed_pages(client, alice, f"{query}&page=1") == (names[:3], 4, 2)
    assert listed_pages(client, alice, f"{query}&page=2") == (names[3:], 4, 2)
    assert listed_pages(client, alice, f"{query}&page=3") == ([], 4, 2)


def test_events_named_alike_are_ordered_by_their_id(
    client: FlaskClient, alice: User, staff: User
) -> None:
    made = [
        create_event(client, staff, name=name, date=day, category=["Coding"], tags=["Begineer"])
        for name, day in (("Quiz", "2019-09-22"), ("quiz", "2019-09-21"), ("QUIZ", "2019-09-23"))
    ]
    ids = [event["publicId"] for event in made]

    def page_ids(query: str) -> list[str]:
        response = client.get(f"/events{query}", headers=alice.headers)
        return [event["publicId"] for event in response.get_json()["events"]]

    filtered = "?category=Coding&tags=Begineer&limit=2"
    assert page_ids(f"{filtered}&order=name") + page_ids(f"{filtered}&order=name&page=2") == ids
    assert page_ids(f"{filtered}&order=-name") + page_ids(f"{filtered}&order=-name&page=2") == list(
        reversed(ids)
    )


def read_statements(app: Flask, client: FlaskClient, user: User, url: str) -> list[str]:
    """The SELECTs events_service runs for one request."""
    statements: list[str] = []

    def note(*args: Any) -> None:
        statements.append(str(args[2]))

    with app.app_context():
        engine = db.engine
    sqlalchemy_event.listen(engine, "before_cursor_execute", note)
    try:
        assert client.get(url, headers=user.headers).status_code == 200
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", note)
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


def test_a_filtered_page_looks_the_names_up_then_filters_on_ids(
    app: Flask, client: FlaskClient, alice: User, fest: dict[str, str]
) -> None:
    reads = read_statements(app, client, alice, "/events?category=Coding&tags=Prime%20Event")

    # the categories' ids, the tags' ids, COUNT, the page, its categories, its tags
    assert len(reads) == 6
    for statement in reads[2:4]:
        assert "categories.name_key" not in statement
        assert "tags.name_key" not in statement


def test_a_filter_naming_no_entry_is_answered_from_the_lookup_alone(
    app: Flask, client: FlaskClient, alice: User, fest: dict[str, str]
) -> None:
    assert len(read_statements(app, client, alice, "/events?category=Nothing")) == 1


def test_a_page_past_the_last_is_not_queried(
    app: Flask, client: FlaskClient, alice: User, fest: dict[str, str]
) -> None:
    assert len(read_statements(app, client, alice, "/events?page=4&limit=2")) == 1  # COUNT


def test_time_fields_are_answered_as_given(client: FlaskClient, staff: User) -> None:
    created = create_event(client, staff, date="2020-02-29", time="00:00")

    assert (created["date"], created["time"]) == ("2020-02-29", "00:00")


@pytest.mark.parametrize(
    "app_config", [{"EVENTS_MAX_TEAM_SIZE": 5, "EVENTS_MAX_CAPACITY": 10}], indirect=True
)
def test_team_size_and_capacity_bounds_are_settings(client: FlaskClient, staff: User) -> None:
    too_large = client.post("/events", json=document_event(maxSize=6), headers=staff.headers)
    too_many = client.post(
        "/events", json=document_event(maxSize=5, capacity=11), headers=staff.headers
    )
    within = client.post(
        "/events", json=document_event(maxSize=5, capacity=10), headers=staff.headers
    )

    assert too_large.get_json()["errors"] == {"maxSize": "at most 5"}
    assert too_many.get_json()["errors"] == {"capacity": "at most 10"}
    assert within.status_code == 201
