"""The help desk's rules: opening, listing, searching, answering, closing and reopening
tickets. Plain functions taking the session and plain values; refusals are DomainErrors.

Who sees what: a public ticket and its thread are everyone's; a private one is its
opener's and staff's only, and to anyone else it does not exist (404). Staff are the
`staff` and `superuser` roles. Writes commit once at the end; mail to the opener is
handed to `notify` after the commit (it must not fail the request).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, text
from sqlalchemy.orm import Session

from servicekit.db import utcnow
from servicekit.identity import Identity
from servicekit.pagination import Page, Window, paginate
from tickets_service.errors import Forbidden, PageNotFound, TicketNotFound
from tickets_service.limits import HourlyLimit
from tickets_service.models import Comment, Ticket
from tickets_service.notifications import Notice

DEFAULT_TOPIC = "general"
MAX_SEARCH_WORDS = 20
MAX_TICKET_ID = 2**63 - 1
# PostgreSQL's full text search, on the stored column `tickets.search` (migration 0003:
# to_tsvector('english', title || ' ' || description), GIN-indexed; not in the ORM model).
FULL_TEXT_MATCH = "tickets.search @@ plainto_tsquery('english'::regconfig, :words)"

Notify = Callable[[Notice], None]
T = TypeVar("T")


@dataclass(frozen=True)
class TicketFilter:
    """What a list holds: every ticket, or only the public ones, or one opener's."""

    public_only: bool = False
    username: str | None = None
    status: str | None = None
    topic: str | None = None
    q: str | None = None


def is_staff(caller: Identity | None) -> bool:
    return caller is not None and caller.is_staff


# Opening and reading


def open_ticket(
    session: Session,
    limit: HourlyLimit,
    opener: Identity,
    *,
    title: str,
    description: str,
    view: str,
    topic: str | None = None,
) -> Ticket:
    """A new unsolved ticket of the caller; TooManyRequests past their hourly limit."""
    limit.take(opener.subject)
    ticket = Ticket(
        title=title,
        description=description,
        topic=topic or DEFAULT_TOPIC,
        is_public=view == "public",
        opener_id=opener.subject,
        opener_username=opener.username,
        opened_at=utcnow(),
        solved=False,
    )
    session.add(ticket)
    session.commit()
    return ticket


def list_tickets(session: Session, which: TicketFilter, window: Window) -> Page[Ticket]:
    """One page of tickets, newest first; PageNotFound past the last page (an empty list
    has one empty page)."""
    statement = select(Ticket).where(*conditions(session, which)).order_by(Ticket.id.desc())
    return page_or_refusal(session, statement, window)


def conditions(session: Session, which: TicketFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if which.public_only:
        # Plain `is_public`, not `IS true`: PostgreSQL uses the public search index
        # (partial, WHERE is_public) only for a condition that implies its predicate.
        found.append(Ticket.is_public.expression)
    if which.username is not None:
        # A name with NUL (from a path) is no stored name, and PostgreSQL takes no NUL.
        named = "\x00" not in which.username
        found.append(Ticket.opener_username == which.username if named else false())
    if which.status is not None:
        found.append(Ticket.solved.is_(which.status == "solved"))
    if which.topic is not None:
        found.append(Ticket.topic == which.topic)
    words = (which.q or "").split()[:MAX_SEARCH_WORDS]
    if words:
        found.append(search(session.get_bind().dialect.name, words))
    return found


def search(dialect: str, words: list[str]) -> ColumnElement[bool]:
    """Tickets whose title or description hold every word: PostgreSQL's full text search
    (English stems, stop words ignored); elsewhere each word as a substring, ignoring
    ASCII case."""
    if dialect == "postgresql":
        return text(FULL_TEXT_MATCH).bindparams(words=" ".join(words))  # type: ignore[return-value]
    matches = []
    for word in words:
        pattern = "%" + escape_like(word) + "%"
        matches.append(
            or_(
                Ticket.title.like(pattern, escape="\\"),
                Ticket.description.like(pattern, escape="\\"),
            )
        )
    return and_(*matches)


def escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def page_or_refusal(session: Session, statement: Select[tuple[T]], window: Window) -> Page[T]:
    page = paginate(session, statement, window)
    if page.number > page.pages:
        raise PageNotFound(page.size, page.pages)
    return page


def user_tickets(
    session: Session, caller: Identity, username: str, which: TicketFilter, window: Window
) -> Page[Ticket]:
    """Every ticket `username` opened, public and private: for that user and staff."""
    if caller.username != username and not is_staff(caller):
        raise Forbidden("only the user and staff see a user's tickets")
    return list_tickets(session, which, window)


def visible_ticket(session: Session, ticket_id: str, caller: Identity | None) -> Ticket:
    """The ticket, if the caller may see it; TicketNotFound otherwise."""
    ticket = find_ticket(session, ticket_id)
    if ticket.is_public or is_staff(caller) or is_opener(caller, ticket):
        return ticket
    raise TicketNotFound()


def find_ticket(session: Session, ticket_id: str) -> Ticket:
    if not ticket_id.isascii() or not ticket_id.isdigit() or int(ticket_id) > MAX_TICKET_ID:
        raise TicketNotFound()
    ticket = session.get(Ticket, int(ticket_id))
    if ticket is None:
        raise TicketNotFound()
    return ticket


def is_opener(caller: Identity | None, ticket: Ticket) -> bool:
    return (
        caller is not None and ticket.opener_id is not None and caller.subject == ticket.opener_id
    )


# The thread


def list_comments(
    session: Session, ticket_id: str, caller: Identity | None, window: Window
) -> Page[Comment]:
    """One page of the ticket's thread, oldest first."""
    ticket = visible_ticket(session, ticket_id, caller)
    statement = select(Comment).where(Comment.ticket_id == ticket.id).order_by(Comment.id)
    return page_or_refusal(session, statement, window)


def add_comment(
    session: Session,
    ticket_id: str,
    caller: Identity,
    content: str,
    limit: HourlyLimit,
    notify: Notify,
) -> Comment:
    """A reply by the opener or staff. The opener's replies count against their hourly
    limit; a staff reply mails the opener."""
    ticket = visible_ticket(session, ticket_id, caller)
    staff = is_staff(caller)
    if not staff and not is_opener(caller, ticket):
        raise Forbidden("only the ticket's opener and staff reply to it")
    if not staff:
        limit.take(caller.subject)
    comment = Comment(
        ticket_id=ticket.id,
        author_id=caller.subject,
        author_username=caller.username,
        content=content,
        created_at=utcnow(),
    )
    session.add(comment)
    session.commit()
    if staff:
        tell_opener(ticket, caller, notify, replied(ticket, caller, content))
    return comment


# Closing and reopening


def close_ticket(
    session: Session, ticket_id: str, caller: Identity, content: str, notify: Notify
) -> Ticket:
    """Solve the ticket with `content` (staff). The solution joins the thread too, so a
    reopened ticket keeps it; closing again with another solution replaces it, with the
    same one changes nothing."""
    ticket = find_ticket(session, ticket_id)
    if ticket.solved and ticket.solution == content:
        return ticket
    now = utcnow()
    ticket.solved, ticket.solution, ticket.solved_at = True, content, now
    ticket.solver_id, ticket.solver_username = caller.subject, caller.username
    session.add(
        Comment(
            ticket_id=ticket.id,
            author_id=caller.subject,
            author_username=caller.username,
            content=content,
            created_at=now,
        )
    )
    session.commit()
    tell_opener(ticket, caller, notify, closed(ticket, caller, content))
    return ticket


def reopen_ticket(session: Session, ticket_id: str, caller: Identity) -> Ticket:
    """Back to unsolved (its opener or staff); its thread, solution included, stays.
    Reopening an unsolved ticket changes nothing."""
    ticket = visible_ticket(session, ticket_id, caller)
    if not is_staff(caller) and not is_opener(caller, ticket):
        raise Forbidden("only the ticket's opener and staff reopen it")
    if ticket.solved:
        ticket.solved, ticket.solution, ticket.solved_at = False, None, None
        ticket.solver_id = ticket.solver_username = None
        session.commit()
    return ticket


# Mail to the opener


def tell_opener(ticket: Ticket, caller: Identity, notify: Notify, notice: Notice | None) -> None:
    """Hand the notice over unless the opener is gone or is the one who acted."""
    if notice is not None and ticket.opener_id is not None and ticket.opener_id != caller.subject:
        notify(notice)


def replied(ticket: Ticket, caller: Identity, content: str) -> Notice | None:
    if ticket.opener_id is None:
        return None
    return Notice(
        ticket.opener_id,
        f"New reply to your ticket #{ticket.id}: {ticket.title}",
        f'{caller.username} replied to your ticket #{ticket.id} "{ticket.title}":\n\n{content}\n',
    )


def closed(ticket: Ticket, caller: Identity, content: str) -> Notice | None:
    if ticket.opener_id is None:
        return None
    return Notice(
        ticket.opener_id,
        f"Your ticket #{ticket.id} is solved: {ticket.title}",
        f'{caller.username} closed your ticket #{ticket.id} "{ticket.title}" '
        f"with this solution:\n\n{content}\n\nReopen it if the answer does not help.\n",
    )
