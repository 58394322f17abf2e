"""The help desk's public list and its search, through the gateway, on SQLite or PostgreSQL.

Starts auth_service, tickets_service and the gateway under gunicorn on free loopback
ports (a private redis-server, a temporary var folder). tickets_service runs on its SQLite
file in that folder, or on PostgreSQL with `--database-url` (the database is created for
the run and dropped afterwards).

Setup, not measured: once the stack has migrated its databases, `--tickets` tickets are
written straight into tickets_service's own database with SQLAlchemy Core bulk inserts
(the API opens at most a few tickets per user and hour, by design). They are 70 % public,
40 % solved, spread over ten topics and two months, opened by 5,000 made-up users; titles
(4-10 words) and descriptions (20-150 words) are drawn from help-desk words and a few
thousand made-up ones with a Zipf-like frequency, so the text has a realistic spread of
common and rare words. Two words are planted: `wristband` in 1 % of the tickets, `refund`
in 20 % (no other word contains either). PostgreSQL's tables are then VACUUM ANALYZEd, as
autovacuum would soon do.

Measured, one request after another for `--duration` seconds per case, anonymous, through
the gateway: `GET /ticket/public` page 1 (10 tickets, newest first), and the same with
`q=wristband` and `q=refund`; the baseline is the thread of one public ticket
(`GET /ticket/<id>/comments`: one ticket read and an empty page) in the same run. With
`--explain` on PostgreSQL, the SQL of the searches (captured from tickets_service's own
`list_tickets`) is shown with EXPLAIN ANALYZE: the GIN index's use is visible there.

    .venv/bin/python bench/tickets.py [--database-url URL] [--tickets 100000] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, create_engine, insert
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auth_service.models import new_public_id
from bench.harness import (
    TIMEOUT,
    Timing,
    analyze,
    captured_queries,
    database_url,
    explain,
    print_timings,
    service_database,
    time_requests,
)
from devstack.stack import RATE_LIMITS_OFF, running_stack
from servicekit.db import utcnow
from servicekit.pagination import Window
from tickets_service import service as tickets_service
from tickets_service.models import Ticket

PROCESSES = ["auth", "tickets", "gateway"]
SETTINGS = {"LOG_LEVEL": "WARNING", **RATE_LIMITS_OFF}
RARE_WORD, RARE_SHARE = "wristband", 0.01
COMMON_WORD, COMMON_SHARE = "refund", 0.20
PLANTS = ((RARE_WORD, RARE_SHARE), (COMMON_WORD, COMMON_SHARE))
PUBLIC_SHARE, SOLVED_SHARE = 0.7, 0.4
SOLUTION = "Sorted at the help desk; thank you for your patience."
OPENERS = 5_000
BATCH = 10_000
TOPICS = {
    "general": 25, "registration": 20, "payment": 12, "events": 12, "accommodation": 8,
    "technical": 8, "food": 5, "transport": 5, "lost and found": 3, "sponsorship": 2,
}  # fmt: skip
HELP_DESK_TEXT = """
    the a to and of i my is in for it not on with can this have was be at you how please
    when we do are from but get there no what after am an will if any as event events
    ticket tickets registration register registered team teams payment paid pay fee fees
    account login password email mail otp phone college id card hostel room accommodation
    food lunch dinner coupon venue hall auditorium time schedule date day tomorrow today
    yesterday morning evening night workshop hackathon talk quiz competition certificate
    prize winner result results round final judges problem issue error page website app
    link form upload photo picture logo name change update cancel cancelled waiting list
    seat seats confirmed pending status help urgent still yet again already since hours
    minutes bus train station parking gate entry pass volunteer organiser coordinator
    contact number wrong missing lost found bag bottle charger laptop wifi internet slow
    """
SYLLABLES = (
    "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da",
    "fi", "gu", "ho", "je", "ba", "co", "zu", "ra", "le", "no",
)  # fmt: skip


def vocabulary(rng: random.Random, made_up: int = 3_000) -> tuple[list[str], list[float]]:
    """Help-desk words first, then made-up ones, weighted 1/rank (Zipf-like): the words
    and their cumulative weights."""
    words = list(dict.fromkeys(HELP_DESK_TEXT.split()))
    known, wanted = set(words), len(words) + made_up
    while len(words) < wanted:
        word = "".join(rng.choices(SYLLABLES, k=rng.randrange(2, 5)))
        if word not in known and RARE_WORD not in word and COMMON_WORD not in word:
            known.add(word)
            words.append(word)
    return words, list(itertools.accumulate(1 / rank for rank in range(1, len(words) + 1)))


def planted(words: list[str], rng: random.Random, *plants: str) -> list[str]:
    for word in plants:
        words.insert(rng.randrange(len(words) + 1), word)
    return words


def ticket_rows(count: int, rng: random.Random) -> list[dict[str, Any]]:
    words, cumulative = vocabulary(rng)
    topics, topic_weights = list(TOPICS), list(TOPICS.values())
    openers = [(new_public_id(), f"participant_{number}") for number in range(OPENERS)]
    solver = (new_public_id(), "helpdesk")
    now = utcnow()
    rows = []
    for number in range(count):
        opened = now - timedelta(days=60) * (1 - number / count)
        plants = [word for word, share in PLANTS if rng.random() < share]
        in_title = [w for w in plants if rng.random() < 0.3]
        title = planted(
            rng.choices(words, cum_weights=cumulative, k=rng.randrange(4, 11)), rng, *in_title
        )
        description = planted(
            rng.choices(words, cum_weights=cumulative, k=rng.randrange(20, 151)),
            rng,
            *[w for w in plants if w not in in_title],
        )
        opener = rng.choice(openers)
        solved = rng.random() < SOLVED_SHARE
        rows.append(
            {
                "title": " ".join(title).capitalize()[:200],
                "description": " ".join(description).capitalize() + ".",
                "topic": rng.choices(topics, topic_weights)[0],
                "is_public": rng.random() < PUBLIC_SHARE,
                "opener_id": opener[0],
                "opener_username": opener[1],
                "opened_at": opened,
                "solved": solved,
                "solution": SOLUTION if solved else None,
                "solver_id": solver[0] if solved else None,
                "solver_username": solver[1] if solved else None,
                "solved_at": opened + timedelta(hours=rng.randrange(1, 48)) if solved else None,
            }
        )
    return rows


def load_tickets(engine: Engine, count: int, seed: int = 13) -> tuple[int, dict[str, int]]:
    """The bulk load; the id of one public ticket, and how many tickets hold each word."""
    rows = ticket_rows(count, random.Random(seed))
    with engine.begin() as connection:
        for first in range(0, len(rows), BATCH):
            connection.execute(insert(Ticket.__table__), rows[first : first + BATCH])
    analyze(engine)
    with Session(engine) as session:
        first_public = session.query(Ticket.id).filter(Ticket.is_public.is_(True)).first()
    holding = {
        word: sum(1 for row in rows if word in f"{row['title']} {row['description']}".lower())
        for word in (RARE_WORD, COMMON_WORD)
    }
    assert first_public is not None
    return int(first_public.id), holding


def measure(gateway: str, ticket_id: int, duration: float) -> list[Timing]:
    session = requests.Session()
    cases = [
        ("baseline: GET /ticket/<id>/comments", f"{gateway}/ticket/{ticket_id}/comments"),
        ("GET /ticket/public, page 1", f"{gateway}/ticket/public"),
        (f"q={RARE_WORD} (1 %), page 1", f"{gateway}/ticket/public?q={RARE_WORD}"),
        (f"q={COMMON_WORD} (20 %), page 1", f"{gateway}/ticket/public?q={COMMON_WORD}"),
    ]
    for case, url in cases[2:]:
        pages = session.get(url, timeout=TIMEOUT).json()["pages"]
        print(f"{case}: {pages} pages of public tickets")
    return [time_requests(session, case, url, duration) for case, url in cases]


def explain_search(engine: Engine) -> None:
    for word in (RARE_WORD, COMMON_WORD):
        which = tickets_service.TicketFilter(public_only=True, q=word)

        def search(session: Session, which: tickets_service.TicketFilter = which) -> Any:
            return tickets_service.list_tickets(session, which, Window.of_page(1, 10))

        print(f"\nEXPLAIN ANALYZE, q={word}, page 1:")
        explain(engine, captured_queries(engine, search))


def run(args: argparse.Namespace) -> None:
    with (
        service_database(args.database_url, "TICKETS_DATABASE_URL") as database,
        running_stack(PROCESSES, settings={**SETTINGS, **database}) as stack,
    ):
        engine = create_engine(database_url(stack, "tickets"))
        started = time.perf_counter()
        ticket_id, holding = load_tickets(engine, args.tickets)
        print(
            f"bulk load: {args.tickets} tickets in {time.perf_counter() - started:.1f} s; "
            + ", ".join(f"{word} in {count}" for word, count in holding.items())
        )
        timings = measure(stack.url("gateway"), ticket_id, args.duration)
        print_timings(timings, "PostgreSQL" if args.database_url else "SQLite")
        if args.explain and engine.dialect.name == "postgresql":
            explain_search(engine)
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL; its database is (re)created")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=10, help="seconds per case")
    parser.add_argument("--quick", action="store_true", help="2 s per case")
    parser.add_argument(
        "--explain", action="store_true", help="PostgreSQL: EXPLAIN ANALYZE the searches"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration = 2
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
