"""What the tests of events, photos and calendars share: the document's payloads, and
events created through the API."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.real_auth import User

CATEGORIES = ["Coding", "Contest", "Hackathon"]
TAGS = ["Prime Event", "Special Prizes", "Begineer"]
OTHERS_DESCRIPTION = "Events of no other category."  # as the migration writes it


def document_event(**overrides: Any) -> dict[str, Any]:
    """The document's create payload, with real values; an override of None drops a key."""
    body: dict[str, Any] = {
        "name": "Codechef Elektra",
        "description": "A 3 hour long competitive coding contest.",
        "date": "2019-09-24",
        "time": "09:30",
        "venue": "Computer Lab",
        "fees": "Rs 300",
        "prize": ["First Prize: 2000", "Second Prize: 1500"],
        "teamEvent": True,
        "minSize": 3,
        "maxSize": 8,
        "rules": ["Everyone should Participate", "Good Work etc etc"],
        "faq": [["Why laptop is required?", "To code"], ["Pre-requirements?", "A Hackerrank ID"]],
        "category": ["Coding", "Contest"],
        "tags": ["Prime Event", "Special Prizes"],
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def add_catalogue(client: FlaskClient, staff: User) -> None:
    """The categories and tags the document's events use (and Others)."""
    for kind, names in (("category", CATEGORIES), ("tags", TAGS)):
        for name in names:
            response = client.post(f"/events/{kind}", json={"name": name}, headers=staff.headers)
            assert response.status_code == 201, response.get_json()


def create_event(client: FlaskClient, staff: User, **overrides: Any) -> dict[str, Any]:
    """POST the document's event (with overrides); the 201 body."""
    response = client.post("/events", json=document_event(**overrides), headers=staff.headers)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())
