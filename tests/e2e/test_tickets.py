"""tickets_service through the gateway, as the fest document's client uses it: open a
ticket, the public list, a user's tickets, every ticket for staff, close; private tickets
kept out of every public list and search; a thread, reopening, and the opener's mail sent
by the stack's mail worker to its outbox."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from devstack.stack import RunningStack
from tests.e2e.fest_helpers import Client, participant, unique, unique_word, wait_for

TICKET_KEYS = {
    "ticketid", "title", "description", "topic", "view", "openedBy", "openingDate", "solution",
}  # fmt: skip
PAGE_KEYS = {"pages", "currentpage", "result"}
COMMENT_KEYS = {"commentid", "author", "content", "createdAt"}
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
MAIL_TIMEOUT = 15.0


def admin(gateway_url: str, admin_token: str) -> Client:
    return Client(gateway_url, admin_token, "admin")


def opened(user: Client, view: str = "public", **fields: Any) -> dict[str, Any]:
    body = {"title": unique("Another Issue"), "description": "Fix it Faster", "view": view}
    response = user.post("/ticket/", json={**body, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    assert set(response.json()) == PAGE_KEYS
    return [ticket["ticketid"] for ticket in response.json()["result"]]


def mails_to(outbox: Path, address: str) -> list[EmailMessage]:
    """The messages in the outbox to `address`, oldest first (file names sort by time)."""
    paths = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
    messages = [message_from_bytes(path.read_bytes(), policy=policy.default) for path in paths]
    return [message for message in messages if message["To"] == address]


# The document's requests, in its order


def test_the_documents_ticket_requests(gateway_url: str, admin_token: str) -> None:
    staff, user, other = (
        admin(gateway_url, admin_token),
        participant(gateway_url),
        participant(gateway_url),
    )

    ticket = opened(user, topic="payments")

    assert set(ticket) == TICKET_KEYS
    assert ticket["ticketid"].isdigit()
    assert {key: ticket[key] for key in ("description", "topic", "view", "openedBy")} == {
        "description": "Fix it Faster", "topic": "payments", "view": "public",
        "openedBy": user.username,
    }  # fmt: skip
    assert DAY.fullmatch(ticket["openingDate"])
    assert ticket["solution"] == {"status": "unsolved"}
    ticketid = ticket["ticketid"]

    public = Client(gateway_url).get("/ticket/public", params={"limit": 10, "page": 1})
    assert ticketid in ids(public)
    assert public.json()["result"][0] == ticket  # newest first
    assert (
        ids(
            Client(gateway_url).get(
                "/ticket/public/", params={"topic": "payments", "status": "unsolved"}
            )
        )[0]
        == ticketid
    )

    mine = user.get(f"/ticket/{user.username}")
    assert ids(mine) == [ticketid]
    assert mine.json()["result"] == [ticket]
    assert ids(staff.get(f"/ticket/{user.username}/")) == [ticketid]
    assert other.get(f"/ticket/{user.username}").status_code == 403
    assert Client(gateway_url).get(f"/ticket/{user.username}").status_code == 401

    everything = staff.get("/ticket", params={"user": user.username, "topic": "payments"})
    assert ids(everything) == [ticketid]
    assert (everything.json()["pages"], everything.json()["currentpage"]) == (1, 1)
    assert user.get("/ticket").status_code == 403

    assert staff.put(f"/ticket/{ticketid}/close", json={}).status_code == 400
    assert staff.put("/ticket/999999999/close", json={"content": "x"}).status_code == 404
    assert user.put(f"/ticket/{ticketid}/close", json={"content": "mine"}).status_code == 403
    closed = staff.put(f"/ticket/{ticketid}/close", json={"content": "This is my solution"})

    assert closed.status_code == 200, closed.text
    solution = closed.json()["solution"]
    assert set(solution) == {"status", "solvedBy", "solvingDate", "content"}
    assert (solution["status"], solution["solvedBy"], solution["content"]) == (
        "solved", "admin", "This is my solution",
    )  # fmt: skip
    assert DAY.fullmatch(solution["solvingDate"])
    assert ids(staff.get("/ticket", params={"user": user.username, "status": "solved"})) == [
        ticketid
    ]
    assert ids(staff.get("/ticket", params={"user": user.username, "status": "unsolved"})) == []


# Private tickets


def test_a_private_ticket_never_appears_in_public_lists_or_searches(
    gateway_url: str, admin_token: str
) -> None:
    staff, user, other = (
        admin(gateway_url, admin_token),
        participant(gateway_url),
        participant(gateway_url),
    )
    word = unique_word()
    secret = opened(user, "private", title=f"Refund {word}", description=f"My card {word}")
    shown = opened(user, "public", title=f"Venue {word}", description=f"Where is {word}")
    assert secret["view"] == "private"

    for reader in (Client(gateway_url), other, user):
        assert ids(reader.get("/ticket/public", params={"q": word})) == [shown["ticketid"]]
        listed = reader.get("/ticket/public", params={"limit": 100})
        assert secret["ticketid"] not in ids(listed)
        assert shown["ticketid"] in ids(listed)
    for stranger in (Client(gateway_url), other):  # its thread does not exist for them
        assert stranger.get(f"/ticket/{secret['ticketid']}/comments").status_code == 404
    assert user.get(f"/ticket/{secret['ticketid']}/comments").status_code == 200
    assert ids(user.get(f"/ticket/{user.username}", params={"q": word})) == [
        shown["ticketid"], secret["ticketid"],
    ]  # fmt: skip
    assert ids(staff.get("/ticket", params={"q": word})) == [shown["ticketid"], secret["ticketid"]]
    # Closing it keeps it private.
    assert (
        staff.put(f"/ticket/{secret['ticketid']}/close", json={"content": "Done"}).status_code
        == 200
    )
    assert ids(Client(gateway_url).get("/ticket/public", params={"q": word})) == [shown["ticketid"]]
    assert (
        ids(Client(gateway_url).get("/ticket/public", params={"q": word, "status": "solved"})) == []
    )


# A conversation, and the mail it sends


def test_a_thread_reopening_and_the_openers_mail(
    stack: RunningStack, gateway_url: str, admin_token: str
) -> None:
    staff, user, other = (
        admin(gateway_url, admin_token),
        participant(gateway_url),
        participant(gateway_url),
    )
    ticket = opened(user)
    ticketid = ticket["ticketid"]
    thread = f"/ticket/{ticketid}/comments"

    question = user.post(thread, json={"content": "Any news?"})
    assert question.status_code == 201, question.text
    assert set(question.json()) == COMMENT_KEYS
    assert (question.json()["author"], question.json()["content"]) == (user.username, "Any news?")
    reply = staff.post(f"{thread}/", json={"content": "Looking into it."})
    assert reply.status_code == 201, reply.text
    assert other.post(thread, json={"content": "Me too"}).status_code == 403
    assert Client(gateway_url).post(thread, json={"content": "Me too"}).status_code == 401

    read = Client(gateway_url).get(thread)  # a public ticket's thread is everyone's
    assert read.status_code == 200, read.text
    assert [(c["author"], c["content"]) for c in read.json()["result"]] == [
        (user.username, "Any news?"), ("admin", "Looking into it."),
    ]  # fmt: skip

    closed = staff.put(f"/ticket/{ticketid}/close", json={"content": "Fixed it."})
    assert closed.status_code == 200, closed.text
    assert other.put(f"/ticket/{ticketid}/reopen").status_code == 403
    reopened = user.put(f"/ticket/{ticketid}/reopen")
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["solution"] == {"status": "unsolved"}
    kept = user.get(thread).json()["result"]
    assert [c["content"] for c in kept] == ["Any news?", "Looking into it.", "Fixed it."]

    # The mail worker writes the staff reply's and the closing's messages, in that order;
    # the opener's own comment and reopening send nothing.
    address = f"{user.username}@example.org"
    outbox = stack.var / "outbox"
    mails = wait_for(
        lambda: found if len(found := mails_to(outbox, address)) >= 2 else None,
        MAIL_TIMEOUT,
        f"two mails to {address}",
    )
    assert len(mails) == 2
    for mail in mails:
        assert f"#{ticketid}" in mail["Subject"] and ticket["title"] in mail["Subject"]
    assert "Looking into it." in mails[0].get_content()
    assert "Fixed it." in mails[1].get_content() and "solved" in mails[1]["Subject"]
