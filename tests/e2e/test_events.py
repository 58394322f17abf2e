"""events_service through the gateway, as the fest document's client uses it: categories,
tags, events, registrations, teams, invitations, organisers and volunteers; a whole fest
(a team formed by invitations takes the only seat, another waits and is promoted, a photo
is served, the calendar and the CSV export read back); a deletion in auth_service reaching
the teams through the relay and the stream consumer; the gateway's refusals."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from PIL import Image

from tests.e2e.e2e_helpers import TIMEOUT, bearer
from tests.e2e.fest_helpers import (
    Client,
    in_path,
    participant,
    png,
    unique,
    wait_for,
)

# The keys of the document's answers (ours may add some).
CREATED_EVENT_KEYS = {
    "name", "description", "date", "time", "venue", "fees", "prize", "teamEvent",
    "minSize", "maxSize", "rules", "faq", "category", "tags",
}  # fmt: skip
LISTED_EVENT_KEYS = {
    "publicId", "eventPicture", "eventLogo", "name", "description", "date", "time",
    "venue", "category", "tags",
}  # fmt: skip
EVENT_DETAIL_KEYS = {
    "publicId", "name", "eventPicture", "eventLogo", "description", "date", "time", "venue",
    "fees", "prize", "teamEvent", "teamEventProperties", "rules", "faq", "category", "tags",
}  # fmt: skip
EDITED_EVENT_KEYS = CREATED_EVENT_KEYS | {"eventid"}
TEAM_KEYS = {"teamid", "name", "leader", "members", "events", "invitees"}
COLLEGE = "Test College 123"  # every user new_user registers


def admin(gateway_url: str, admin_token: str) -> Client:
    return Client(gateway_url, admin_token, "admin")


def event_payload(
    name: str, category: list[str], tags: list[str], **changes: Any
) -> dict[str, Any]:
    """The document's create payload, filled in."""
    return {
        "name": name,
        "description": "A 3 hour long competitive coding contest.",
        "date": "2027-03-14",
        "time": "09:30",
        "venue": "Computer Lab",
        "fees": "Rs 300",
        "prize": ["First Prize: 2000", "Second Prize: 1500"],
        "teamEvent": True,
        "minSize": 1,
        "maxSize": 3,
        "rules": ["Everyone should Participate"],
        "faq": [["Why laptop is required?", "To code"]],
        "category": category,
        "tags": tags,
        **changes,
    }


def created(response: requests.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def add_entry(staff: Client, path: str, name: str, description: str = "") -> None:
    created(staff.post(f"/events/{path}", json={"name": name, "description": description}))


def new_event(staff: Client, **changes: Any) -> str:
    """A team event in Others, free unless told; its publicId."""
    payload = event_payload(unique("Event"), [], [], **{"fees": 0, **changes})
    return str(created(staff.post("/events", json=payload))["publicId"])


def new_team(leader: Client, *members: Client) -> str:
    """A team led by `leader` whose `members` accepted its invitations; its teamid."""
    teamid = str(created(leader.post("/teams/", json={"name": unique("Team")}))["teamid"])
    for member in members:
        created(leader.post(f"/teams/{teamid}/invitations", json={"username": member.username}))
        accepted = member.put(f"/users/{member.username}/invitation/{teamid}/accept/")
        assert accepted.status_code == 200, accepted.text
    return teamid


# The document's requests, in its order


def test_the_documents_category_requests(gateway_url: str, admin_token: str) -> None:
    staff = admin(gateway_url, admin_token)
    anyone = Client(gateway_url)
    name = unique("Coding Event")  # a space: URL-encoded in paths

    listed = anyone.get("/events/category")
    assert listed.status_code == 200, listed.text
    assert all(set(entry) == {"name", "description"} for entry in listed.json())
    assert "Others" in [entry["name"] for entry in listed.json()]

    added = staff.post("/events/category", json={"name": name, "description": "Code."})
    assert added.status_code == 201, added.text
    assert added.json() == {"name": name, "description": "Code."}
    again = staff.post("/events/category", json={"name": name.upper()})
    assert again.status_code == 422
    assert again.json() == {"error": "This category already exist."}
    assert {"name": name, "description": "Code."} in anyone.get("/events/category/").json()

    edited = staff.put(f"/events/category/{in_path(name)}", json={"description": "More code."})
    assert edited.status_code == 202, edited.text
    assert edited.json() == {"name": name, "description": "More code."}
    unknown = staff.put(f"/events/category/{in_path(unique('Nope'))}", json={"description": "x"})
    assert unknown.status_code == 422
    assert unknown.json() == {"error": "Category does not exist."}

    event = str(
        created(staff.post("/events", json=event_payload(unique("E"), [name], [])))["publicId"]
    )
    in_use = staff.delete(f"/events/category/{in_path(name)}")
    assert in_use.status_code == 422
    assert in_use.json() == {"error": "Cant delete a category that is in use."}
    assert staff.delete(f"/events/{event}").status_code == 200

    deleted = staff.delete(f"/events/category/{in_path(name)}/")
    assert deleted.status_code == 204 and deleted.content == b""
    assert name not in [entry["name"] for entry in anyone.get("/events/category").json()]
    gone = staff.delete(f"/events/category/{in_path(name)}")
    assert gone.status_code == 422 and set(gone.json()) == {"error"}


def test_the_documents_tag_requests(gateway_url: str, admin_token: str) -> None:
    staff = admin(gateway_url, admin_token)
    anyone = Client(gateway_url)
    name = unique("Begineer")

    listed = anyone.get("/events/tags")
    assert listed.status_code == 200, listed.text
    assert all(set(entry) == {"name", "description"} for entry in listed.json())

    added = staff.post("/events/tags", json={"name": name, "description": "Good for begineers."})
    assert added.status_code == 201, added.text
    assert added.json() == {"name": name, "description": "Good for begineers."}
    again = staff.post("/events/tags", json={"name": name})
    assert again.status_code == 422
    assert again.json() == {"error": "Tag already exist."}

    edited = staff.put(f"/events/tags/{in_path(name)}/", json={"description": "No prizes."})
    assert edited.status_code == 202, edited.text
    assert edited.json() == {"name": name, "description": "No prizes."}
    unknown = staff.put(f"/events/tags/{in_path(unique('Nope'))}", json={"description": "x"})
    assert unknown.status_code == 422
    assert unknown.json() == {"error": "Tag does not exist."}

    payload = event_payload(unique("E"), [], [name])
    event = str(created(staff.post("/events", json=payload))["publicId"])
    in_use = staff.delete(f"/events/tags/{in_path(name)}")
    assert in_use.status_code == 422
    assert in_use.json() == {"error": "Cant delete a tag that is in use."}
    assert staff.delete(f"/events/{event}").status_code == 200

    deleted = staff.delete(f"/events/tags/{in_path(name)}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert name not in [entry["name"] for entry in anyone.get("/events/tags").json()]


def test_the_documents_event_requests(gateway_url: str, admin_token: str) -> None:
    staff = admin(gateway_url, admin_token)
    user = participant(gateway_url)
    category, other_category, tag = unique("Coding"), unique("Design"), unique("Prime Event")
    add_entry(staff, "category", category)
    add_entry(staff, "category", other_category)
    add_entry(staff, "tags", tag)
    payload = event_payload(unique("Codechef Elektra"), [category], [tag])

    response = staff.post("/events", json=payload)

    body = created(response)
    assert CREATED_EVENT_KEYS | {"publicId"} <= set(body)
    public_id = body["publicId"]
    assert isinstance(public_id, str) and public_id
    expected = {**payload, "fees": 300}  # "Rs 300" is answered as a number
    assert {key: body[key] for key in CREATED_EVENT_KEYS} == expected
    without_category = created(staff.post("/events", json=event_payload(unique("E"), [], [])))
    assert without_category["category"] == ["Others"]

    listed = user.get(
        f"/events?limit=100&page=1&category={in_path(category)}&order=date&tags={in_path(tag)}"
    )
    assert listed.status_code == 200, listed.text
    events = listed.json()["events"]
    assert [event["publicId"] for event in events] == [public_id]
    assert set(events[0]) >= LISTED_EVENT_KEYS
    assert (events[0]["category"], events[0]["tags"]) == ([category], [tag])
    elsewhere = user.get("/events/", params={"category": other_category})
    assert elsewhere.status_code == 200 and elsewhere.json()["events"] == []

    detail = Client(gateway_url).get(f"/events/{public_id}")
    assert detail.status_code == 200, detail.text
    assert set(detail.json()) >= EVENT_DETAIL_KEYS
    assert detail.json()["teamEventProperties"] == {"minSize": 1, "maxSize": 3}
    assert (detail.json()["eventPicture"], detail.json()["eventLogo"]) == (None, None)
    assert detail.json()["fees"] == 300

    edit = {
        **{key: value for key, value in payload.items() if key not in ("minSize", "maxSize")},
        "name": unique("Elektra 4.0"),
        "teamProperties": {"minSize": 2, "maxSize": 8},
        "category": [],
    }
    edited = staff.put(f"/events/{public_id}/", json=edit)
    assert edited.status_code == 202, edited.text
    assert set(edited.json()) >= EDITED_EVENT_KEYS
    assert edited.json()["eventid"] == public_id
    assert (edited.json()["name"], edited.json()["minSize"], edited.json()["maxSize"]) == (
        edit["name"], 2, 8,
    )  # fmt: skip
    assert edited.json()["category"] == ["Others"]
    again = Client(gateway_url).get(f"/events/{public_id}/").json()
    assert again["teamEventProperties"] == {"minSize": 2, "maxSize": 8}
    assert again["name"] == edit["name"]

    deleted = staff.delete(f"/events/{public_id}")
    assert deleted.status_code == 200, deleted.text
    assert Client(gateway_url).get(f"/events/{public_id}").status_code == 404
    assert staff.delete(f"/events/{without_category['publicId']}").status_code == 200


def test_the_documents_registration_requests(gateway_url: str, admin_token: str) -> None:
    staff = admin(gateway_url, admin_token)
    user = participant(gateway_url)
    single = new_event(staff, teamEvent=False, minSize=1, maxSize=1, fees="Rs 300")

    registered = user.post(f"/events/{single}/register/")
    body = created(registered)
    assert body["message"] == "Successfully registered"
    assert body["status"] == "payment pending"  # the event has a fee
    again = user.post(f"/events/{single}/register")
    assert again.status_code == 422
    assert {key: again.json()[key] for key in ("message", "eventId", "status")} == {
        "message": "Already registered for event",
        "eventId": single,
        "status": "registered",
    }

    listed = staff.get(f"/events/{single}/registrations")
    assert listed.status_code == 200, listed.text
    assert (listed.json()["eventPublicId"], listed.json()["eventType"]) == (single, "single")
    registration_id = body["registrationId"]
    assert listed.json()["registrations"] == [
        {"registrationId": registration_id, "userId": user.username, "status": "payment pending"}
    ]
    one = user.get(f"/events/{single}/registrations/{registration_id}")
    assert one.status_code == 200, one.text
    assert one.json() == {
        "registrationId": registration_id, "userId": user.username, "status": "payment pending",
    }  # fmt: skip

    leader, member = participant(gateway_url), participant(gateway_url)
    team_event = new_event(staff)
    teamid = new_team(leader, member)
    team_registered = leader.post(f"/events/{team_event}/register/", json={"teamId": teamid})
    assert created(team_registered)["message"] == "Successfully registered"
    twice = leader.post(f"/events/{team_event}/register/", json={"teamId": teamid})
    assert twice.status_code == 422
    assert {key: twice.json()[key] for key in ("message", "eventId", "teamId", "status")} == {
        "message": "Team already registered for event",
        "eventId": team_event,
        "teamId": teamid,
        "status": "registered",
    }
    teams = staff.get(f"/events/{team_event}/registrations/").json()
    assert teams["eventType"] == "team"
    assert [(entry["teamId"], entry["status"]) for entry in teams["registrations"]] == [
        (teamid, "confirmed")
    ]
    seen_by_member = member.get(
        f"/events/{team_event}/registrations/{teams['registrations'][0]['registrationId']}"
    )
    assert seen_by_member.status_code == 200, seen_by_member.text
    assert seen_by_member.json()["teamId"] == teamid
    assert seen_by_member.json()["userId"] == leader.username


def test_the_documents_team_requests(gateway_url: str, admin_token: str) -> None:
    staff = admin(gateway_url, admin_token)
    leader = participant(gateway_url, "leader")
    invitee, rejecter, withdrawn = (participant(gateway_url) for _ in range(3))

    made = leader.post("/teams/", json={"name": "The Gingers"})
    team = created(made)
    assert team == {
        "teamid": team["teamid"], "name": "The Gingers", "leader": leader.username,
        "members": [], "events": [], "invitees": [],
    }  # fmt: skip
    teamid = team["teamid"]
    assert teamid.isdigit()

    for user in (invitee, rejecter, withdrawn):
        invited = leader.post(f"/teams/{teamid}/invitations", json={"username": user.username})
        assert invited.status_code == 201, invited.text
    assert set(invited.json()) == TEAM_KEYS
    assert invited.json()["invitees"] == [invitee.username, rejecter.username, withdrawn.username]
    again = leader.post(f"/teams/{teamid}/invitations/", json={"username": invitee.username})
    assert again.status_code == 422 and again.json() == {"error": "Already invited"}
    nobody = leader.post(f"/teams/{teamid}/invitations", json={"username": unique("ghost")[-10:]})
    assert nobody.status_code == 422 and nobody.json() == {"error": "Wrong Username"}

    invitations = invitee.get(f"/users/{invitee.username}/invitation")
    assert invitations.status_code == 200, invitations.text
    assert invitations.json() == [
        {"teamid": teamid, "name": "The Gingers", "leader": leader.username, "status": "pending"}
    ]
    accepted = invitee.put(f"/users/{invitee.username}/invitation/{teamid}/accept/")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {
        "status": "invitation accepted", "teamid": teamid, "name": "The Gingers",
    }  # fmt: skip
    twice = invitee.put(f"/users/{invitee.username}/invitation/{teamid}/accept")
    assert twice.status_code == 422 and twice.json() == {"error": "Already Accepted"}
    rejected = rejecter.put(f"/users/{rejecter.username}/invitation/{teamid}/reject/")
    assert rejected.status_code == 200, rejected.text
    assert rejected.json() == {
        "status": "invitation rejected", "teamid": teamid, "name": "The Gingers",
    }  # fmt: skip
    assert [
        entry["status"] for entry in rejecter.get(f"/users/{rejecter.username}/invitation").json()
    ] == ["rejected"]

    withdrawal = leader.delete(f"/teams/{teamid}/invitations/{withdrawn.username}")
    assert withdrawal.status_code == 204, withdrawal.text
    not_pending = leader.delete(f"/teams/{teamid}/invitations/{invitee.username}")
    assert not_pending.status_code == 422 and not_pending.json() == {"error": "Already Accepted"}

    renamed = leader.put(f"/teams/{teamid}", json={"name": "The Flockers"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {
        "teamid": teamid, "name": "The Flockers", "leader": leader.username,
        "members": [invitee.username], "events": [], "invitees": [],
    }  # fmt: skip
    detail = invitee.get(f"/teams/{teamid}/")
    assert detail.status_code == 200 and detail.json() == renamed.json()
    listed = staff.get("/teams", params={"user": invitee.username, "limit": 10, "page": 1})
    assert listed.status_code == 200, listed.text
    assert (listed.json()["pages"], listed.json()["currentpage"]) == (1, 1)
    assert listed.json()["result"] == [renamed.json()]

    removed = leader.delete(f"/teams/{teamid}/{invitee.username}")
    assert removed.status_code == 204, removed.text
    assert leader.get(f"/teams/{teamid}").json()["members"] == []
    deleted = leader.delete(f"/teams/{teamid}")
    assert deleted.status_code == 204, deleted.text
    assert leader.get(f"/teams/{teamid}").status_code == 404


def test_the_documents_organiser_and_volunteer_requests(gateway_url: str, admin_token: str) -> None:
    staff = admin(gateway_url, admin_token)
    reader = participant(gateway_url)
    head, lead, helper = (participant(gateway_url) for _ in range(3))
    event = new_event(staff)

    assert reader.get(f"/events/{event}/organisers").json() == []
    first = staff.post(
        f"/events/{event}/organisers", json={"username": head.username, "role": "Head"}
    )
    assert first.status_code == 201, first.text
    added = staff.post(
        f"/events/{event}/organisers/", json={"username": lead.username, "role": "Leader"}
    )
    assert added.status_code == 201, added.text
    assert added.json() == [
        {"username": head.username, "role": "Head"},
        {"username": lead.username, "role": "Leader"},
    ]
    ghost = staff.post(
        f"/events/{event}/organisers", json={"username": unique("g")[-10:], "role": "x"}
    )
    assert ghost.status_code == 422
    listed = reader.get(f"/events/{event}/organisers")
    assert listed.status_code == 200 and listed.json() == added.json()
    removed = staff.delete(f"/events/{event}/organisers/{head.username}")
    assert removed.status_code == 204, removed.text
    assert reader.get(f"/events/{event}/organisers").json() == [
        {"username": lead.username, "role": "Leader"}
    ]

    assert reader.get(f"/events/{event}/volunteers").json() == []
    tasks = ["Arrange Rooms", "Take Attendence"]
    volunteered = staff.post(
        f"/events/{event}/volunteers", json={"username": helper.username, "task": tasks}
    )
    assert volunteered.status_code == 201, volunteered.text
    assert volunteered.json() == [{"username": helper.username, "task": tasks}]
    changed = staff.put(
        f"/events/{event}/volunteers/{helper.username}", json={"task": ["Task1", "Task2"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "eventid": event,
        "volunteer": helper.username,
        "task": ["Task1", "Task2"],
    }
    assert reader.get(f"/events/{event}/volunteers/").json() == [
        {"username": helper.username, "task": ["Task1", "Task2"]}
    ]
    gone = staff.delete(f"/events/{event}/volunteers/{helper.username}")
    assert gone.status_code == 204, gone.text
    assert reader.get(f"/events/{event}/volunteers").json() == []


# A whole fest


def test_a_whole_fest(gateway_url: str, admin_token: str) -> None:
    staff = admin(gateway_url, admin_token)
    category, tag = unique("Hackathon"), unique("Special Prizes")
    add_entry(staff, "category", category, "Contests of speed.")
    add_entry(staff, "tags", tag, "Prizes.")
    name = unique("Hack Night")
    payload = event_payload(name, [category], [tag], fees=0, capacity=1)
    event = str(created(staff.post("/events", json=payload))["publicId"])

    leader, member = participant(gateway_url, "leader"), participant(gateway_url, "member")
    team_name = unique("Rabbits")
    teamid = str(created(leader.post("/teams/", json={"name": team_name}))["teamid"])
    invited = leader.post(f"/teams/{teamid}/invitations", json={"username": member.username})
    assert created(invited)["invitees"] == [member.username]
    seen = member.get(f"/users/{member.username}/invitation").json()
    assert seen == [
        {"teamid": teamid, "name": team_name, "leader": leader.username, "status": "pending"}
    ]
    assert member.put(f"/users/{member.username}/invitation/{teamid}/accept/").status_code == 200
    assert leader.get(f"/teams/{teamid}").json()["members"] == [member.username]

    first = created(leader.post(f"/events/{event}/register/", json={"teamId": teamid}))
    assert (first["message"], first["status"]) == ("Successfully registered", "confirmed")
    assert leader.post(f"/events/{event}/register/", json={"teamId": teamid}).status_code == 422
    other_leader, other_name = participant(gateway_url, "leader"), unique("Hares")
    other_team = str(created(other_leader.post("/teams/", json={"name": other_name}))["teamid"])
    second = created(other_leader.post(f"/events/{event}/register/", json={"teamId": other_team}))
    assert (second["message"], second["status"]) == ("Successfully registered", "waiting")
    assert leader.get(f"/teams/{teamid}").json()["events"] == [event]

    uploaded = staff.post(
        f"/events/{event}/photo", files={"photo": ("poster.png", png((48, 32)), "image/png")}
    )
    assert uploaded.status_code == 200, uploaded.text
    picture_url = uploaded.json()["eventPicture"]
    assert (
        picture_url
        and Client(gateway_url).get(f"/events/{event}").json()["eventPicture"] == picture_url
    )
    absolute = urljoin(f"{gateway_url}/", picture_url)
    assert urlsplit(absolute).netloc == urlsplit(gateway_url).netloc  # served by the gateway
    picture = requests.get(absolute, timeout=TIMEOUT)  # no token
    assert picture.status_code == 200, picture.text
    assert picture.headers["Content-Type"].startswith("image/")
    assert Image.open(io.BytesIO(picture.content)).size == (48, 32)

    ics = Client(gateway_url).get(f"/events/{event}/calendar.ics")
    assert ics.status_code == 200, ics.text
    assert ics.headers["Content-Type"].startswith("text/calendar")
    assert "BEGIN:VEVENT" in ics.text and name in ics.text.replace("\r\n ", "")

    export = staff.get(f"/events/{event}/registrations", params={"format": "csv"})
    assert export.status_code == 200, export.text
    assert export.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [
        (row["username"], row["email"], row["college"], row["team"], row["status"]) for row in rows
    ] == [
        (leader.username, f"{leader.username}@example.org", COLLEGE, team_name, "confirmed"),
        (member.username, f"{member.username}@example.org", COLLEGE, team_name, "confirmed"),
        (
            other_leader.username,
            f"{other_leader.username}@example.org",
            COLLEGE,
            other_name,
            "waiting",
        ),
    ]

    cancelled = leader.delete(f"/events/{event}/registrations/{first['registrationId']}")
    assert cancelled.status_code == 204, cancelled.text
    promoted = other_leader.get(f"/events/{event}/registrations/{second['registrationId']}")
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["status"] == "confirmed"
    listed = staff.get(f"/events/{event}/registrations").json()["registrations"]
    assert [(entry["teamId"], entry["status"]) for entry in listed] == [(other_team, "confirmed")]
    assert leader.get(f"/teams/{teamid}").json()["events"] == []


# Across processes: auth_service's lifecycle stream


def test_a_member_deleted_in_auth_service_leaves_their_team(
    gateway_url: str, admin_token: str
) -> None:
    leader, member, stays = (participant(gateway_url) for _ in range(3))
    teamid = new_team(leader, member, stays)

    deleted = requests.delete(
        f"{gateway_url}/users/{member.username}/", headers=bearer(admin_token), timeout=TIMEOUT
    )
    assert deleted.status_code == 200, deleted.text

    def members_once_gone() -> list[str] | None:
        members = list(created(leader.get(f"/teams/{teamid}"), 200)["members"])
        return None if member.username in members else members

    assert wait_for(members_once_gone, 15, "the member's removal") == [stays.username]


# The gateway's refusals


def test_staff_routes_refuse_anonymous_callers_and_normal_users(gateway_url: str) -> None:
    anonymous, user = Client(gateway_url), participant(gateway_url)
    staff_routes = [
        ("POST", "/events/category", {"name": unique("Nope")}),
        ("POST", "/events/tags", {"name": unique("Nope")}),
        ("POST", "/events", event_payload(unique("Nope"), [], [])),
        ("GET", "/teams", None),
    ]
    for method, path, body in staff_routes:
        assert anonymous.request(method, path, json=body).status_code == 401, (method, path)
        assert user.request(method, path, json=body).status_code == 403, (method, path)
    assert anonymous.get("/events").status_code == 401  # the list needs a sign-in
    assert user.get("/events").status_code == 200
