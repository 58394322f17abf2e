"""Search (`q`) across the lists, through the rows' whole life: on PostgreSQL it matches
the stored search column of migration 0003 (written by the database on every insert and
update), on SQLite the text itself. Private tickets never reach a public search."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import downgrade, upgrade

from tests.real_auth import User
from tests.tickets_service.tickets_helpers import ids, open_ticket


def found(client: FlaskClient, path: str, q: str, user: User | None = None) -> list[str]:
    headers = user.headers if user is not None else {}
    response = client.get(path, query_string={"q": q}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return ids(response.get_json())


def put(client: FlaskClient, user: User, ticket: dict[str, Any], action: str, **body: Any) -> None:
    response = client.put(f"/ticket/{ticket['ticketid']}/{action}", json=body, headers=user.headers)
    assert response.status_code == 200, response.get_json()


def test_every_list_searches_titles_and_descriptions(
    client: FlaskClient, alice: User, bob: User, staff: User
) -> None:
    by_title = open_ticket(client, alice, "Wristband lost", description="At the gate")
    private = open_ticket(client, alice, "Gate", description="My wristband broke", view="private")
    bobs = open_ticket(client, bob, "Wristband colours", description="Which one?")
    open_ticket(client, alice, "Parking", description="Where?")

    assert found(client, "/ticket/public", "wristband") == [bobs["ticketid"], by_title["ticketid"]]
    assert found(client, "/ticket/alice", "wristband", alice) == [
        private["ticketid"],
        by_title["ticketid"],
    ]
    assert found(client, "/ticket/alice", "wristband", staff) == [
        private["ticketid"],
        by_title["ticketid"],
    ]
    assert found(client, "/ticket", "wristband", staff) == [
        bobs["ticketid"],
        private["ticketid"],
        by_title["ticketid"],
    ]
    assert found(client, "/ticket", "wristband gate", staff) == [
        private["ticketid"],
        by_title["ticketid"],
    ]


def test_closing_and_reopening_keep_a_ticket_findable_and_private_ones_hidden(
    client: FlaskClient, alice: User, staff: User
) -> None:
    public = open_ticket(client, alice, "Refund please", description="Ticket bought twice")
    private = open_ticket(
        client, alice, "Refund of my pass", description="Bought twice", view="private"
    )
    for ticket in (public, private):
        put(client, staff, ticket, "close", content="Refund sent")

    assert found(client, "/ticket/public", "refund twice") == [public["ticketid"]]
    assert found(client, "/ticket/public", "bought") == [public["ticketid"]]
    assert found(client, "/ticket", "refund twice", staff) == [
        private["ticketid"],
        public["ticketid"],
    ]

    put(client, alice, private, "reopen")

    assert found(client, "/ticket/public", "refund") == [public["ticketid"]]
    assert found(client, "/ticket/alice", "refund twice", alice) == [
        private["ticketid"],
        public["ticketid"],
    ]


def test_a_search_counts_its_pages_exactly(client: FlaskClient, alice: User) -> None:
    matching = [open_ticket(client, alice, f"Lanyard {n}")["ticketid"] for n in range(7)]
    open_ticket(client, alice, "Lanyard hidden", view="private")
    open_ticket(client, alice, "Something else")

    def page(number: int) -> Any:
        query = {"q": "lanyard", "limit": 3, "page": number}
        return client.get("/ticket/public", query_string=query)

    pages = [page(number).get_json() for number in (1, 2, 3)]
    assert [(body["pages"], body["currentpage"]) for body in pages] == [(3, 1), (3, 2), (3, 3)]
    assert [ticketid for body in pages for ticketid in ids(body)] == matching[::-1]
    assert page(4).status_code == 400


def test_tickets_opened_before_the_search_migration_are_found_after_it(
    app: Flask, client: FlaskClient, alice: User
) -> None:
    ticket = open_ticket(client, alice, "Shuttle times", description="From the station")
    with app.app_context():
        downgrade(revision="tickets_0002")
        upgrade()

    assert found(client, "/ticket/public", "station shuttle") == [ticket["ticketid"]]
    assert found(client, "/ticket/public", "helicopter") == []
