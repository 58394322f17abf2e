"""The fest's event list and its seat race, through the gateway, on SQLite or PostgreSQL.

Starts auth_service, events_service and the gateway under gunicorn on free loopback ports
(a private redis-server, a temporary var folder). events_service runs on its SQLite file
in that folder, or on PostgreSQL with `--database-url` (the database is created for the
run and dropped afterwards).

Setup, not measured: once the stack has migrated its databases, `--events` events (with
categories and tags, skewed as a fest's are: many workshops, few quizzes; most events
free) and `--registrations` registrations (with their participant rows and the events'
seat counts) are written straight into events_service's own database with SQLAlchemy
Core bulk inserts; going through the API would take most of an hour and measure nothing
this benchmark is about. The registrants of that bulk are made-up users (the list never
looks them up); PostgreSQL's tables are then VACUUM ANALYZEd, as autovacuum would soon do.

Measured: `GET /events` (limit 20) one request after another for `--duration` seconds
per case through the gateway with a signed-in user's token: unfiltered, filtered by a
common category and tag (page 1 and page 100) and by a rare pair (page 1); the baseline
is `GET /events/<publicId>` in the same run, the floor of an authenticated read of one
event. With `--explain` on PostgreSQL, the SQL of the filtered pages (captured from
events_service's own `list_events`) is shown with EXPLAIN ANALYZE.

The seat race: `--racers` real users (rows written into auth_service's database with one
shared password hash, then each signs in through the gateway) register at once, from
`--threads` threads, for one free event of capacity `--capacity` created through the
API. Reported: registrations/s, each request's p50/p99, and the result as the database
and `GET /events/<publicId>/registrations` show it (seats held, waiting, duplicates).

    .venv/bin/python bench/events.py [--database-url URL] [--duration 10] [--quick] [--explain]
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, bindparam, create_engine, func, insert, select, update
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auth_service.models import new_public_id
from bench.harness import (
    PASSWORD,
    SETTINGS,
    TIMEOUT,
    Timing,
    add_users,
    analyze,
    captured_queries,
    database_url,
    explain,
    login,
    percentile,
    print_timings,
    service_database,
    time_requests,
)
from devstack.stack import RunningStack, running_stack
from events_service.catalogue.schemas import name_key
from events_service.events import service as events_service
from events_service.models import (
    CONFIRMED,
    Category,
    Event,
    Participant,
    Registration,
    Tag,
    event_categories,
    event_tags,
)
from servicekit.db import utcnow
from servicekit.pagination import Window

PROCESSES = ["auth", "events", "gateway"]
PAGE_SIZE = 20
# Each event gets one or two categories by these weights, and each tag with its chance.
CATEGORY_WEIGHTS = {
    "Workshop": 40, "Talk": 18, "Competition": 14, "Sports": 9, "Hackathon": 7,
    "Music": 7, "Gaming": 6, "Dance": 5, "Robotics": 4, "Art": 4, "Film": 3, "Quiz": 2,
}  # fmt: skip
TAG_CHANCES = {
    "Free": 0.6, "Beginner": 0.3, "Prizes": 0.25, "Team": 0.2, "Certificate": 0.15,
    "Online": 0.1, "Outdoor": 0.08, "Night": 0.06, "Food": 0.06, "Alumni": 0.05,
    "Difficult": 0.04, "Sponsored": 0.04, "Intercollege": 0.03, "Faculty": 0.03,
    "Limited seats": 0.03, "Hands-on": 0.03, "Women in tech": 0.02, "Open source": 0.02,
    "Photography": 0.02, "Literary": 0.02,
}  # fmt: skip
COMMON = ("Workshop", "Free")
RARE = ("Quiz", "Difficult")
VENUES = ["Main Auditorium", "Seminar Hall 2", "Lab Complex", "Open Air Theatre", "Ground"]
WORDS = [
    "learn", "build", "explore", "compete", "team", "prize", "register", "bring", "laptop",
    "students", "faculty", "session", "hands-on", "introduction", "advanced", "certificate",
    "round", "final", "judges", "open", "college",
]  # fmt: skip


# The bulk load


def event_rows(count: int, rng: random.Random) -> list[dict[str, Any]]:
    first_day, now = date(2027, 1, 1), utcnow()
    rows = []
    for number in range(count):
        name = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {number}"
        rows.append(
            {
                "public_id": secrets.token_urlsafe(12),
                "name": name,
                "name_key": name.casefold(),
                "description": " ".join(rng.choices(WORDS, k=rng.randrange(20, 60))),
                "date": first_day + timedelta(days=rng.randrange(365)),
                "time": clock_time(rng.randrange(8, 21), rng.choice((0, 15, 30, 45))),
                "venue": rng.choice(VENUES),
                "fees": rng.choice((0, 0, 0, 100, 300)),
                "prize": ["Rs 5000", "Rs 2000"] if rng.random() < 0.3 else [],
                "team_event": False,
                "min_size": 1,
                "max_size": 1,
                "rules": [" ".join(rng.choices(WORDS, k=8)) for _ in range(3)],
                "faq": [["Who can take part?", "Every registered student."]],
                "capacity": None,
                "seats_taken": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


def catalogue_ids(
    connection: Any, model: type[Category] | type[Tag], names: list[str]
) -> list[int]:
    now = utcnow()
    rows = [
        {"name": n, "name_key": name_key(n), "description": "", "created_at": now} for n in names
    ]
    table = model.__table__
    inserted = connection.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    )
    return [row.id for row in inserted]


def link_rows(
    event_ids: list[int], rng: random.Random
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Each event's categories (one or two by weight) and tags (each by its chance), as
    (event index, category index) and (event index, tag index) pairs."""
    categories, weights = list(range(len(CATEGORY_WEIGHTS))), list(CATEGORY_WEIGHTS.values())
    category_links: list[tuple[int, int]] = []
    tag_links: list[tuple[int, int]] = []
    for index in range(len(event_ids)):
        chosen = set(rng.choices(categories, weights, k=rng.choice((1, 1, 2))))
        category_links.extend((index, category) for category in sorted(chosen))
        for tag, chance in enumerate(TAG_CHANCES.values()):
            if rng.random() < chance:
                tag_links.append((index, tag))
    return category_links, tag_links


def load_events(engine: Engine, events: int, registrations: int, seed: int = 12) -> str:
    """The bulk load (see the module's docstring); one event's publicId, for the baseline."""
    rng = random.Random(seed)
    events_table = Event.__table__
    with engine.begin() as connection:
        category_ids = catalogue_ids(connection, Category, list(CATEGORY_WEIGHTS))
        tag_ids = catalogue_ids(connection, Tag, list(TAG_CHANCES))
        rows = event_rows(events, rng)
        event_ids = [
            row.id
            for row in connection.execute(
                insert(events_table).returning(events_table.c.id, sort_by_parameter_order=True),
                rows,
            )
        ]
        category_links, tag_links = link_rows(event_ids, rng)
        connection.execute(
            insert(event_categories),
            [{"event_id": event_ids[e], "category_id": category_ids[c]} for e, c in category_links],
        )
        connection.execute(
            insert(event_tags),
            [{"event_id": event_ids[e], "tag_id": tag_ids[t]} for e, t in tag_links],
        )
        load_registrations(connection, event_ids, registrations, rng)
    analyze(engine)
    return str(rows[0]["public_id"])


def load_registrations(
    connection: Any, event_ids: list[int], count: int, rng: random.Random
) -> None:
    """`count` confirmed registrations of made-up users, a few per event, and the seats."""
    users = [(new_public_id(), f"fan_{number}") for number in range(max(1, count // 5))]
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < count:
        pairs.add((rng.choice(event_ids), rng.randrange(len(users))))
    now = utcnow()
    ordered = sorted(pairs)
    table = Registration.__table__
    registration_ids = [
        row.id
        for row in connection.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True),
            [
                {
                    "event_id": event_id,
                    "user_id": users[user][0],
                    "username": users[user][1],
                    "status": CONFIRMED,
                    "holds_seat": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for event_id, user in ordered
            ],
        )
    ]
    connection.execute(
        insert(Participant.__table__),
        [
            {
                "registration_id": registration_id,
                "event_id": event_id,
                "user_id": users[user][0],
                "username": users[user][1],
            }
            for registration_id, (event_id, user) in zip(registration_ids, ordered, strict=True)
        ],
    )
    seats = Counter(event_id for event_id, _ in ordered)
    events_table = Event.__table__
    connection.execute(
        update(events_table)
        .where(events_table.c.id == bindparam("event"))
        .values(seats_taken=bindparam("seats")),
        [{"event": event_id, "seats": taken} for event_id, taken in seats.items()],
    )


# The list


def list_url(gateway: str, page: int, names: tuple[str, str] | None = None) -> str:
    url = f"{gateway}/events?limit={PAGE_SIZE}&page={page}"
    if names is not None:
        url += f"&category={names[0]}&tags={names[1]}"
    return url


def measure_list(gateway: str, token: str, first_event: str, duration: float) -> list[Timing]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    for names in (COMMON, RARE):
        total = session.get(list_url(gateway, 1, names), timeout=TIMEOUT).json()["total"]
        print(f"events with category {names[0]} and tag {names[1]}: {total}")
    cases = [
        ("baseline: GET /events/<publicId>", f"{gateway}/events/{first_event}"),
        ("GET /events, page 1", list_url(gateway, 1)),
        ("GET /events, page 100", list_url(gateway, 100)),
        (f"{COMMON[0]} + {COMMON[1]}, page 1", list_url(gateway, 1, COMMON)),
        (f"{COMMON[0]} + {COMMON[1]}, page 100", list_url(gateway, 100, COMMON)),
        (f"{RARE[0]} + {RARE[1]}, page 1", list_url(gateway, 1, RARE)),
    ]
    page_100 = session.get(cases[4][1], timeout=TIMEOUT).json()
    if len(page_100["events"]) != PAGE_SIZE:
        raise SystemExit(f"page 100 of the common filter has {len(page_100['events'])} events")
    return [time_requests(session, case, url, duration) for case, url in cases]


def explain_list(engine: Engine) -> None:
    for page in (1, 100):
        window = Window.of_page(page, PAGE_SIZE)

        def list_page(session: Session, window: Window = window) -> Any:
            return events_service.list_events(
                session, window, categories=[COMMON[0]], tags=[COMMON[1]]
            )

        queries = captured_queries(engine, list_page)
        print(f"\nEXPLAIN ANALYZE, {COMMON[0]} + {COMMON[1]}, page {page}:")
        explain(engine, queries)


# The seat race


def create_race_event(gateway: str, admin: str, capacity: int) -> str:
    response = requests.post(
        f"{gateway}/events",
        json={
            "name": "The seat race",
            "description": "Free entry, limited seats.",
            "date": "2027-06-01",
            "time": "10:00",
            "venue": VENUES[0],
            "fees": 0,
            "category": [COMMON[0]],
            "tags": [COMMON[1]],
            "capacity": capacity,
        },
        headers={"Authorization": f"Bearer {admin}"},
        timeout=TIMEOUT,
    )
    if response.status_code != 201:
        raise SystemExit(f"creating the event: {response.status_code} {response.text[:300]}")
    return str(response.json()["publicId"])


@dataclass
class Race:
    seconds: float
    latencies: list[float]
    answers: Counter[str]


def race(gateway: str, public_id: str, tokens: list[str], threads: int) -> Race:
    """Every token registers once, `threads` at a time, all released together."""
    local = threading.local()
    start = threading.Event()
    url = f"{gateway}/events/{public_id}/register/"

    def register(token: str) -> tuple[float, str]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        start.wait()
        sent = time.perf_counter()
        response = local.session.post(
            url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
        )
        latency = time.perf_counter() - sent
        if response.status_code == 201:
            return latency, str(response.json()["status"])
        return latency, f"HTTP {response.status_code}"

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(register, token) for token in tokens]
        time.sleep(0.5)  # every thread waiting at the start
        started = time.perf_counter()
        start.set()
        results = [future.result() for future in futures]
        seconds = time.perf_counter() - started
    return Race(seconds, [latency for latency, _ in results], Counter(a for _, a in results))


def race_in_database(engine: Engine, public_id: str) -> dict[str, int]:
    with Session(engine) as session:
        found = session.execute(
            select(Event.id, Event.seats_taken).where(Event.public_id == public_id)
        ).one()
        statuses = session.execute(
            select(Registration.status, func.count())
            .where(Registration.event_id == found.id)
            .group_by(Registration.status)
        ).all()
        twice = session.scalar(
            select(func.count()).select_from(
                select(Registration.user_id)
                .where(Registration.event_id == found.id)
                .group_by(Registration.user_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
    counts = {str(status): int(count) for status, count in statuses}
    return {"seats_taken": found.seats_taken, "duplicates": int(twice or 0), **counts}


def race_in_api(gateway: str, admin: str, public_id: str) -> dict[str, int]:
    response = requests.get(
        f"{gateway}/events/{public_id}/registrations?limit=5000",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=TIMEOUT,
    )
    response.raise_for_status()
    listed = response.json()["registrations"]
    users = Counter(str(registration["userId"]) for registration in listed)
    counts = Counter(str(registration["status"]) for registration in listed)
    return {"listed": len(listed), "duplicates": sum(1 for n in users.values() if n > 1), **counts}


def seat_race(stack: RunningStack, admin: str, args: argparse.Namespace, engine: Engine) -> None:
    gateway = stack.url("gateway")
    names = add_users(database_url(stack, "auth"), args.racers)
    with ThreadPoolExecutor(max_workers=8) as pool:
        tokens = list(pool.map(lambda name: login(gateway, name, PASSWORD), names))
    public_id = create_race_event(gateway, admin, args.capacity)
    result = race(gateway, public_id, tokens, args.threads)
    in_database = race_in_database(engine, public_id)
    in_api = race_in_api(gateway, admin, public_id)
    p50, p99 = statistics.median(result.latencies), percentile(result.latencies, 0.99)
    print(
        f"\nSeat race: {args.racers} users, {args.threads} threads, capacity {args.capacity}"
        f"\n| registrations/s | p50 | p99 | answers | database | GET .../registrations |"
        f"\n|---|---|---|---|---|---|"
        f"\n| {args.racers / result.seconds:.0f} | {p50 * 1000:.0f} ms | {p99 * 1000:.0f} ms "
        f"| {json.dumps(dict(result.answers))} | {json.dumps(in_database)} "
        f"| {json.dumps(in_api)} |"
    )
    held = in_database.get(CONFIRMED, 0)
    expected = min(args.capacity, args.racers)
    if (held, in_database["duplicates"], in_database["seats_taken"]) != (expected, 0, expected):
        raise SystemExit("the seat race went wrong: see the database's counts above")


# Running


def run(args: argparse.Namespace) -> None:
    with (
        service_database(args.database_url, "EVENTS_DATABASE_URL") as database,
        running_stack(PROCESSES, settings={**SETTINGS, **database}) as stack,
    ):
        engine = create_engine(database_url(stack, "events"))
        started = time.perf_counter()
        first_event = load_events(engine, args.events, args.registrations)
        print(
            f"bulk load: {args.events} events, {args.registrations} registrations "
            f"in {time.perf_counter() - started:.1f} s"
        )
        gateway = stack.url("gateway")
        admin = login(gateway, "admin", stack.environment["ADMIN_PASSWORD"])
        timings = measure_list(gateway, admin, first_event, args.duration)
        print_timings(timings, "PostgreSQL" if args.database_url else "SQLite")
        if args.explain and engine.dialect.name == "postgresql":
            explain_list(engine)
        seat_race(stack, admin, args, engine)
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL; its database is (re)created")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--registrations", type=int, default=50_000)
    parser.add_argument("--duration", type=float, default=10, help="seconds per list case")
    parser.add_argument("--racers", type=int, default=500)
    parser.add_argument("--capacity", type=int, default=100)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="2 s per list case")
    parser.add_argument(
        "--explain", action="store_true", help="PostgreSQL: EXPLAIN ANALYZE the filtered pages"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration = 2
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
