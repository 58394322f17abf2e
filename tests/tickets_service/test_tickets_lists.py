"""The lists: public tickets (anyone), a user's (that user, staff), every ticket (staff);
their filters, search, pages and order. Private tickets never reach a public list."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.real_auth import User
from tests.tickets_service.tickets_helpers import ids, open_ticket


def close(client: FlaskClient, staff: User, ticket: dict[str, Any], content: str = "Done") -> None:
    response = client.put(
        f"/ticket/{ticket['ticketid']}/close", json={"content": content}, headers=staff.headers
    )
    assert response.status_code == 200, response.get_json()


# Public tickets


@pytest.mark.parametrize("path", ["/ticket/public", "/ticket/public/"])
def test_anyone_lists_public_tickets_newest_first_never_private_ones(
    client: FlaskClient, alice: User, bob: User, path: str
) -> None:
    first = open_ticket(client, alice, "First")
    open_ticket(client, alice, "Secret", view="private")
    second = open_ticket(client, bob, "Second")

    response = client.get(path)

    assert response.status_code == 200
    assert response.get_json() == {"pages": 1, "currentpage": 1, "result": [second, first]}


def test_the_documents_empty_query_values_mean_the_defaults(
    client: FlaskClient, alice: User
) -> None:
    ticket = open_ticket(client, alice)

    response = client.get("/ticket/public?limit&page&status=&topic")

    assert response.status_code == 200
    assert ids(response.get_json()) == [ticket["ticketid"]]


def test_an_empty_list_has_one_empty_page(client: FlaskClient) -> None:
    assert client.get("/ticket/public").get_json() == {"pages": 1, "currentpage": 1, "result": []}


def test_filters_by_status_and_topic(client: FlaskClient, alice: User, staff: User) -> None:
    solved = open_ticket(client, alice, "Solved one", topic="fees")
    unsolved = open_ticket(client, alice, "Open one", topic="fees")
    other = open_ticket(client, alice, "Elsewhere", topic="venue")
    close(client, staff, solved)

    def listed(query: str) -> list[str]:
        return ids(client.get(f"/ticket/public?{query}").get_json())

    assert listed("status=solved") == [solved["ticketid"]]
    assert listed("status=unsolved") == [other["ticketid"], unsolved["ticketid"]]
    assert listed("topic=fees") == [unsolved["ticketid"], solved["ticketid"]]
    assert listed("topic=fees&status=unsolved") == [unsolved["ticketid"]]
    assert listed("topic=Fees") == []  # exact


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=closed", "status"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=x", "page"),
        ("page=99999999999999999999", "page"),
        ("q=" + "w" * 201, "q"),
        ("topic=" + "t" * 101, "topic"),
        ("topic=a%00b", "topic"),
        ("q=a%00b", "q"),
    ],
)
def test_bad_query_values_are_400_naming_them(
    client: FlaskClient, staff: User, query: str, field: str
) -> None:
    for path in ("/ticket/public", "/ticket", f"/ticket/{staff.username}"):
        response = client.get(f"{path}?{query}", headers=staff.headers)

        assert response.status_code == 400, path
        assert list(response.get_json()["errors"]) == [field]


def test_pages_of_limit_tickets(client: FlaskClient, alice: User) -> None:
    opened = [open_ticket(client, alice, f"Ticket {n}")["ticketid"] for n in range(5)]
    newest_first = opened[::-1]

    first = client.get("/ticket/public?limit=2").get_json()
    third = client.get("/ticket/public?limit=2&page=3").get_json()

    assert (first["pages"], first["currentpage"], ids(first)) == (3, 1, newest_first[:2])
    assert (third["pages"], third["currentpage"], ids(third)) == (3, 3, newest_first[4:])


@pytest.mark.parametrize("app_config", [{"TICKETS_PER_HOUR": 0}], indirect=True)
def test_the_default_page_holds_ten_and_100_is_the_largest(
    client: FlaskClient, alice: User
) -> None:
    for n in range(11):
        open_ticket(client, alice, f"Ticket {n}")

    assert len(client.get("/ticket/public").get_json()["result"]) == 10
    assert len(client.get("/ticket/public?limit=100").get_json()["result"]) == 11


def test_a_page_past_the_end_is_the_documents_400(client: FlaskClient, alice: User) -> None:
    for n in range(3):
        open_ticket(client, alice, f"Ticket {n}")

    response = client.get("/ticket/public?limit=2&page=3")

    assert response.status_code == 400
    assert response.get_json() == {
        "message": "This page does not exist",
        "pageSize": 2,
        "noOfPages": 2,
    }


def test_private_tickets_count_in_no_public_page(client: FlaskClient, alice: User) -> None:
    open_ticket(client, alice, "Public")
    for n in range(4):
        open_ticket(client, alice, f"Private {n}", view="private")

    body = client.get("/ticket/public?limit=1").get_json()

    assert body["pages"] == 1
    assert client.get("/ticket/public?limit=1&page=2").status_code == 400


# Search


def test_q_finds_words_in_titles_and_descriptions(client: FlaskClient, alice: User) -> None:
    by_title = open_ticket(client, alice, "Parking near the stadium", description="Where?")
    by_description = open_ticket(client, alice, "Cars", description="Is there parking nearby?")
    open_ticket(client, alice, "Food stalls", description="Vegetarian options")
    both_words = open_ticket(client, alice, "Stadium parking fees", description="How much?")

    def found(q: str) -> list[str]:
        response = client.get("/ticket/public", query_string={"q": q})
        assert response.status_code == 200
        return ids(response.get_json())

    assert found("parking") == [
        both_words["ticketid"],
        by_description["ticketid"],
        by_title["ticketid"],
    ]
    assert found("PARKING stadium") == [both_words["ticketid"], by_title["ticketid"]]
    assert found("  ") == ids(client.get("/ticket/public").get_json())
    assert found("helicopter") == []


def test_q_never_finds_private_tickets_in_public(
    client: FlaskClient, alice: User, staff: User
) -> None:
    open_ticket(client, alice, "Refund of my parking pass", view="private")
    public = open_ticket(client, alice, "Parking for bikes")

    found = client.get("/ticket/public?q=parking").get_json()

    assert (ids(found), found["pages"]) == ([public["ticketid"]], 1)
    assert len(client.get("/ticket?q=parking", headers=staff.headers).get_json()["result"]) == 2


@pytest.mark.parametrize("q", ["100%", "a_b", "back\\slash", "'; DROP TABLE tickets; --", "é"])
def test_q_with_special_characters_matches_them_literally(
    client: FlaskClient, alice: User, q: str
) -> None:
    open_ticket(client, alice, "Plain words only", description="nothing special here")

    response = client.get("/ticket/public", query_string={"q": q})

    assert response.status_code == 200
    assert response.get_json()["result"] == []


# A user's tickets


@pytest.mark.parametrize("suffix", ["", "/"])
def test_a_user_lists_their_own_tickets_public_and_private(
    client: FlaskClient, alice: User, bob: User, suffix: str
) -> None:
    public = open_ticket(client, alice, "Public")
    private = open_ticket(client, alice, "Private", view="private")
    open_ticket(client, bob, "Bob's")

    response = client.get(f"/ticket/alice{suffix}", headers=alice.headers)

    assert response.status_code == 200
    assert response.get_json() == {"pages": 1, "currentpage": 1, "result": [private, public]}


def test_staff_list_any_users_tickets_with_filters(
    client: FlaskClient, alice: User, staff: User, superuser: User
) -> None:
    fees = open_ticket(client, alice, "Fees", view="private", topic="fees")
    open_ticket(client, alice, "Venue", topic="venue")

    for caller in (staff, superuser):
        response = client.get("/ticket/alice?topic=fees&q=fees", headers=caller.headers)
        assert ids(response.get_json()) == [fees["ticketid"]]


def test_a_username_with_nul_has_no_tickets(client: FlaskClient, alice: User, staff: User) -> None:
    open_ticket(client, alice)

    response = client.get("/ticket/alice%00", headers=staff.headers)

    assert (response.status_code, response.get_json()["result"]) == (200, [])
    assert client.get("/ticket?user=alice%00", headers=staff.headers).status_code == 400


def test_another_user_may_not_list_a_users_tickets(
    client: FlaskClient, alice: User, bob: User
) -> None:
    open_ticket(client, alice)

    assert client.get("/ticket/alice", headers=bob.headers).status_code == 403
    assert client.get("/ticket/alice").status_code == 401


# Every ticket


@pytest.mark.parametrize("path", ["/ticket", "/ticket/"])
def test_staff_list_every_ticket(
    client: FlaskClient, alice: User, bob: User, staff: User, path: str
) -> None:
    a = open_ticket(client, alice, "A", view="private")
    b = open_ticket(client, bob, "B")

    response = client.get(path, headers=staff.headers)

    assert response.status_code == 200
    assert response.get_json() == {"pages": 1, "currentpage": 1, "result": [b, a]}


def test_staff_filter_every_ticket_by_user_status_and_topic(
    client: FlaskClient, alice: User, bob: User, staff: User
) -> None:
    mine = open_ticket(client, alice, "A", view="private", topic="fees")
    solved = open_ticket(client, alice, "B", topic="fees")
    open_ticket(client, bob, "C", topic="fees")
    close(client, staff, solved)

    def listed(query: str) -> list[str]:
        return ids(client.get(f"/ticket?{query}", headers=staff.headers).get_json())

    assert listed("user=alice") == [solved["ticketid"], mine["ticketid"]]
    assert listed("user=alice&status=unsolved&topic=fees") == [mine["ticketid"]]
    assert listed("user=nobody") == []


def test_only_staff_list_every_ticket(client: FlaskClient, alice: User) -> None:
    assert client.get("/ticket", headers=alice.headers).status_code == 403
    assert client.get("/ticket").status_code == 401


def test_a_solved_ticket_renders_its_solution(
    client: FlaskClient, alice: User, staff: User
) -> None:
    ticket = open_ticket(client, alice)
    close(client, staff, ticket, "Hall B is behind the library.")

    (listed,) = client.get("/ticket/public").get_json()["result"]

    solution = listed["solution"]
    assert solution == {
        "status": "solved",
        "solvedBy": "staff_1",
        "solvingDate": listed["openingDate"],
        "content": "Hall B is behind the library.",
    }
