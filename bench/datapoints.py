"""Regions and their row permissions through the gateway, on SQLite or PostgreSQL.

Starts auth_service, datapoints_service and the gateway under gunicorn on free loopback
ports (a private redis-server, a temporary var folder). datapoints_service runs on its
SQLite file in that folder, or on PostgreSQL with `--database-url` (the database is
created for the run and dropped afterwards).

Setup, not measured: once the stack has migrated its databases, a tree of `--regions`
regions (1 country, 37 provinces, 774 districts, the rest below districts, each under a
parent drawn at random) is written straight into datapoints_service's own database with
SQLAlchemy Core bulk inserts, with its closure table (`region_tree`: every (ancestor,
descendant, depth), a region its own ancestor at depth 0) filled as the service keeps it
on writes. `--grants` made-up users of the service's users copy hold a region permission
each, at a level drawn at random. Four real users (rows written into auth_service's
database, signed in through the gateway, and copied into the users copy under their
publicId) are measured: one holding a province, one a district, one the country (all
normal users), and one staff user. PostgreSQL's tables are then VACUUM ANALYZEd.

Measured, one request after another for `--duration` seconds per case, through the
gateway: `GET /api/v2/region/?limit=1000` for the province, district and country users;
the baseline is `GET /api/v2/region/<id>` of the province user's own province, same run.
Then the whole region list as CSV for the staff user (`format=csv` without `limit`: the
service streams every row), `--csv-runs` times, with the resident memory (RSS) of
datapoints_service's and the gateway's gunicorn workers sampled every few milliseconds
before, during and after each download. Last, in this process on the same database: the
province user's page of 1,000 as the service computes it (`reading.page`: one SQL
statement that applies the permission, counts and pages) against a naive version, the
original's way: fetch every region row, walk the tree from the user's grants in Python,
slice the page; both render with the service's own renderer, and both answers must be
equal. With `--explain` on PostgreSQL, the SQL of the province user's page is shown
with EXPLAIN ANALYZE.

    .venv/bin/python bench/datapoints.py [--database-url URL] [--duration 10] [--quick] [--explain]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import requests
from sqlalchemy import Engine, create_engine, insert, select, update
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auth_service.models import User as AuthUser
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
    print_timings,
    service_database,
    time_requests,
)
from datapoints_service.engine import reading
from datapoints_service.engine.listing import ListQuery, parse_query, rows_statement
from datapoints_service.engine.rendering import csv_lines, render
from datapoints_service.engine.resource import Caller
from datapoints_service.models import (
    Office,
    Region,
    RegionPermission,
    RegionTree,
    RegionType,
    User,
)
from datapoints_service.resources import RESOURCES
from devstack.stack import RunningStack, running_stack
from servicekit import Identity
from servicekit.db import utcnow

PROCESSES = ["auth", "datapoints", "gateway"]
LEVELS = ("country", "province", "district", "sub-district")
PROVINCES, DISTRICTS = 37, 774
PAGE = 1000
BATCH = 5_000
SAMPLE_SECONDS = 0.005
CSV_BATCH = 1000  # the service's default DATAPOINTS_CSV_BATCH_ROWS
REGION = RESOURCES["region"]


# The bulk load


@dataclass(frozen=True)
class Tree:
    parents: list[int | None]  # by index; the index of each region's parent
    levels: list[int]  # by index; 0 the country

    def first_at(self, level: int) -> int:
        return self.levels.index(level)


def generate_tree(count: int, rng: random.Random) -> Tree:
    """1 country, the provinces under it, districts under random provinces, the rest
    under random districts."""
    parents: list[int | None] = [None]
    levels = [0]
    provinces = range(1, 1 + PROVINCES)
    districts = range(1 + PROVINCES, 1 + PROVINCES + DISTRICTS)
    for _ in provinces:
        parents.append(0)
        levels.append(1)
    for _ in districts:
        parents.append(rng.choice(provinces))
        levels.append(2)
    while len(parents) < count:
        parents.append(rng.choice(districts))
        levels.append(3)
    return Tree(parents, levels)


def closure_rows(tree: Tree, ids: list[int]) -> list[dict[str, int]]:
    """(ancestor, descendant, depth) for every region and every region above it."""
    rows = []
    for index in range(len(tree.parents)):
        above: int | None = index
        depth = 0
        while above is not None:
            rows.append({"ancestor_id": ids[above], "descendant_id": ids[index], "depth": depth})
            above = tree.parents[above]
            depth += 1
    return rows


def insert_batches(connection: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        connection.execute(insert(table), rows[start : start + BATCH])


def load_regions(connection: Any, tree: Tree, rng: random.Random) -> list[int]:
    """The regions (parents first, so each parent's id is known) and their closure."""
    office_id = connection.execute(
        insert(Office.__table__).returning(Office.id), {"name": "bench office"}
    ).scalar_one()
    type_ids = [
        connection.execute(
            insert(RegionType.__table__).returning(RegionType.id), {"name": f"bench {level}"}
        ).scalar_one()
        for level in LEVELS
    ]
    ids: list[int] = []
    now = utcnow()
    table = Region.__table__
    for level in range(len(LEVELS)):
        indexes = [i for i, found in enumerate(tree.levels) if found == level]
        rows = [
            {
                "name": f"{LEVELS[level].title()} {index}",
                "region_code": f"R{index:06d}",
                "slug": f"r{index:06d}",
                "region_type_id": type_ids[level],
                "office_id": office_id,
                "parent_region_id": None if parent is None else ids[parent],
                "latitude": round(rng.uniform(4, 14), 5),
                "longitude": round(rng.uniform(3, 15), 5),
                "shape_file_path": None,
                "source_id": index,
                "created_at": now,
            }
            for index in indexes
            for parent in (tree.parents[index],)
        ]
        inserted = connection.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        )
        ids.extend(row.id for row in inserted)
    insert_batches(connection, RegionTree.__table__, closure_rows(tree, ids))
    return ids


def copy_user(connection: Any, public_id: str, username: str, staff: bool = False) -> int:
    return int(
        connection.execute(
            insert(User.__table__).returning(User.id),
            {
                "public_id": public_id,
                "username": username,
                "email": f"{username}@example.org",
                "is_active": True,
                "is_staff": staff,
                "is_superuser": False,
                "date_joined": utcnow(),
                "first_name": "",
                "last_name": "",
            },
        ).scalar_one()
    )


def load_grants(connection: Any, ids: list[int], count: int, rng: random.Random) -> None:
    """`count` made-up users, each holding one region (read or write) at a random level."""
    users = connection.execute(
        insert(User.__table__).returning(User.id, sort_by_parameter_order=True),
        [
            {
                "public_id": f"bench-grant-{number:06d}",
                "username": f"grant_{number:06d}",
                "email": None,
                "is_active": True,
                "is_staff": False,
                "is_superuser": False,
                "date_joined": utcnow(),
                "first_name": "",
                "last_name": "",
            }
            for number in range(count)
        ],
    )
    insert_batches(
        connection,
        RegionPermission.__table__,
        [
            {"user_id": user.id, "region_id": rng.choice(ids), "read_write": rng.choice("rw")}
            for user in users
        ],
    )


@dataclass(frozen=True)
class Person:
    public_id: str
    username: str
    token: str
    region_id: int | None  # the region they hold (None: staff)


def sign_in_users(stack: RunningStack, holdings: dict[str, int | None]) -> dict[str, Person]:
    """Real auth_service users (the one named "staff" with the staff role), signed in
    through the gateway."""
    auth_url = database_url(stack, "auth")
    names = add_users(auth_url, len(holdings))
    engine = create_engine(auth_url)
    with engine.begin() as connection:
        table = AuthUser.__table__
        connection.execute(
            update(table).where(table.c.username == names[list(holdings).index("staff")]),
            {"role": "staff"},
        )
        found = connection.execute(
            select(table.c.username, table.c.public_id).where(table.c.username.in_(names))
        )
        public_ids = {str(username): str(public_id) for username, public_id in found}
    engine.dispose()
    gateway = stack.url("gateway")
    return {
        role: Person(public_ids[name], name, login(gateway, name, PASSWORD), region_id)
        for (role, region_id), name in zip(holdings.items(), names, strict=True)
    }


def load(engine: Engine, stack: RunningStack, args: argparse.Namespace) -> dict[str, Person]:
    rng = random.Random(14)
    tree = generate_tree(args.regions, rng)
    with engine.begin() as connection:
        ids = load_regions(connection, tree, rng)
        load_grants(connection, ids, args.grants, rng)
    holdings = {
        "province": ids[tree.first_at(1)],
        "district": ids[tree.first_at(2)],
        "country": ids[0],
        "staff": None,
    }
    people = sign_in_users(stack, holdings)
    with engine.begin() as connection:
        for role, person in people.items():
            user_id = copy_user(connection, person.public_id, person.username, role == "staff")
            if person.region_id is not None:
                connection.execute(
                    insert(RegionPermission.__table__),
                    {"user_id": user_id, "region_id": person.region_id, "read_write": "r"},
                )
    analyze(engine)
    return people


# The list through the gateway


def authorized(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def measure_list(gateway: str, people: dict[str, Person], duration: float) -> list[Timing]:
    url = f"{gateway}/api/v2/region/?limit={PAGE}"
    sessions = {role: authorized(person.token) for role, person in people.items()}
    for role in ("province", "district", "country"):
        meta = sessions[role].get(url, timeout=TIMEOUT).json()["meta"]
        print(f"{role} user: {meta['total_count']} regions visible")
    province = people["province"].region_id
    timings = [
        time_requests(
            sessions["province"],
            "baseline: GET /api/v2/region/<id> (province user)",
            f"{gateway}/api/v2/region/{province}",
            duration,
        )
    ]
    for role in ("province", "district", "country"):
        case = f"GET /api/v2/region/?limit={PAGE}, {role} user"
        timings.append(time_requests(sessions[role], case, url, duration))
    return timings


# The CSV and the services' memory


def worker_processes(stack: RunningStack, name: str) -> list[psutil.Process]:
    return psutil.Process(stack.processes[name].pid).children()


class MemorySampler:
    """The highest RSS of each process, sampled every SAMPLE_SECONDS on a thread."""

    def __init__(self, processes: list[psutil.Process]) -> None:
        self.processes = processes
        self.peaks = {process.pid: process.memory_info().rss for process in processes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for process in self.processes:
                rss = process.memory_info().rss
                self.peaks[process.pid] = max(self.peaks[process.pid], rss)
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def rss_total(processes: list[psutil.Process]) -> int:
    return sum(process.memory_info().rss for process in processes)


def download_csv(session: requests.Session, url: str) -> tuple[float, int, int]:
    """Seconds to the last byte, lines, bytes."""
    started = time.perf_counter()
    lines = size = 0
    with session.get(url, stream=True, timeout=TIMEOUT) as response:
        response.raise_for_status()
        for chunk in response.iter_content(chunk_size=65536):
            lines += chunk.count(b"\n")
            size += len(chunk)
    return time.perf_counter() - started, lines, size


def measure_csv(stack: RunningStack, engine: Engine, staff: Person, runs: int) -> None:
    """The CSV through the gateway (with the workers' memory), straight from the
    service, and computed in this process."""
    session = authorized(staff.token)
    url = f"{stack.url('gateway')}/api/v2/region/?format=csv"
    groups = {name: worker_processes(stack, name) for name in ("datapoints", "gateway")}
    before = {name: rss_total(processes) for name, processes in groups.items()}
    seconds: list[float] = []
    peaks = dict.fromkeys(groups, 0)
    for _ in range(runs):
        samplers = {name: MemorySampler(processes) for name, processes in groups.items()}
        for sampler in samplers.values():
            sampler.__enter__()
        elapsed, lines, size = download_csv(session, url)
        for name, sampler in samplers.items():
            sampler.__exit__()
            peaks[name] = max(peaks[name], sum(sampler.peaks.values()))
        seconds.append(elapsed)
    after = {name: rss_total(processes) for name, processes in groups.items()}
    print(
        f"\nCSV of every region, staff user: {lines} lines ({lines - 1} regions), "
        f"{size / 1e6:.1f} MB"
    )
    print("| CSV of every region | downloads | p50 | slowest |")
    print("|---|---|---|---|")
    gateway_p50, gateway_max = statistics.median(seconds), max(seconds)
    print(f"| through the gateway | {runs} | {gateway_p50:.2f} s | {gateway_max:.2f} s |")
    direct = [
        download_csv(session, f"{stack.url('datapoints')}/api/v2/region/?format=csv")[0]
        for _ in range(runs)
    ]
    print(
        f"| datapoints_service directly (no gateway) | {runs} "
        f"| {statistics.median(direct):.2f} s | {max(direct):.2f} s |"
    )
    csv_in_process(engine, staff, runs)
    print("\n| workers' RSS, summed | before the first | peak during any | after the last |")
    print("|---|---|---|---|")
    for name in groups:
        count = len(groups[name])
        print(
            f"| {name} ({count} workers) | {before[name] / 2**20:.1f} MiB "
            f"| {peaks[name] / 2**20:.1f} MiB | {after[name] / 2**20:.1f} MiB |"
        )


def profile_csv(engine: Engine, staff: Person) -> None:
    """Where the in-process CSV's time goes (cProfile, the top functions by own time)."""
    profiler = cProfile.Profile()
    profiler.runcall(csv_once, engine, staff)
    print("\ncProfile of the CSV in this process, by own time:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def csv_once(engine: Engine, staff: Person) -> int:
    """The service's own CSV stream (SQL, rendering, CSV lines) with no HTTP at all; the
    chunks it yields."""
    query = parse_query(REGION, {"format": ["csv"]})
    objects = reading.stream(
        Session(engine), RESOURCES, REGION, caller_of(staff, "staff"), query, CSV_BATCH
    )
    return sum(1 for _ in csv_lines(REGION, objects))


def csv_in_process(engine: Engine, staff: Person, runs: int) -> None:
    """The share of the download that is not the transport."""
    seconds: list[float] = []
    chunks = 0
    for _ in range(runs):
        started = time.perf_counter()
        chunks = csv_once(engine, staff)
        seconds.append(time.perf_counter() - started)
    print(
        f"| in this process: reading.stream + csv_lines, no HTTP ({chunks} chunks) | {runs} "
        f"| {statistics.median(seconds):.2f} s | {max(seconds):.2f} s |"
    )


# Ours against the naive version, in this process


def caller_of(person: Person, role: str = "normal") -> Caller:
    return Caller(Identity(subject=person.public_id, username=person.username, role=role))


def page_query() -> ListQuery:
    return parse_query(REGION, {"limit": [str(PAGE)]})


def ours(session: Session, caller: Caller) -> tuple[int, list[dict[str, Any]]]:
    listing = reading.page(session, RESOURCES, REGION, caller, page_query())
    return listing.total, listing.objects


def naive(session: Session, person: Person) -> tuple[int, list[dict[str, Any]]]:
    """The original's way: every region row, the permission by walking the tree from
    the user's grants in Python, the page sliced in Python."""
    query = page_query()
    everyone = Caller(Identity(subject="", username="", role="staff"))
    rows = session.execute(rows_statement(RESOURCES, REGION, everyone, query)).mappings().all()
    granted = session.scalars(
        select(RegionPermission.region_id)
        .join(User, User.id == RegionPermission.user_id)
        .where(User.public_id == person.public_id)
    ).all()
    children: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        if row["parent_region"] is not None:
            children[row["parent_region"]].append(row["id"])
    visible: set[int] = set()
    waiting = list(granted)
    while waiting:
        region = waiting.pop()
        if region not in visible:
            visible.add(region)
            waiting.extend(children[region])
    shown = [row for row in rows if row["id"] in visible]
    window = query.window
    objects = [
        render(RESOURCES, REGION, row, query.options.uri_format)
        for row in shown[window.offset : window.offset + window.limit]
    ]
    return len(shown), objects


def timed(engine: Engine, action: Callable[[Session], Any], runs: int) -> tuple[float, Any]:
    """The median seconds of `runs` calls of `action` (with its answer serialized, as a
    response would be) on a new session each, and the last answer."""
    times: list[float] = []
    answer: Any = None
    for _ in range(runs):
        started = time.perf_counter()
        with Session(engine) as session:
            answer = action(session)
            json.dumps(answer[1], default=str)
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


def compare_naive(engine: Engine, people: dict[str, Person], runs: int) -> None:
    print(f"\nThe page of {PAGE} in this process, ours against the naive version ({runs} runs):")
    print("| user | visible | ours, p50 | naive, p50 | naive / ours |")
    print("|---|---|---|---|---|")
    for role in ("province", "district", "country"):
        person = people[role]
        ours_seconds, ours_answer = timed(engine, partial(ours, caller=caller_of(person)), runs)
        naive_seconds, naive_answer = timed(engine, partial(naive, person=person), runs)
        if ours_answer != naive_answer:
            raise SystemExit(f"{role} user: the naive answer differs from ours")
        print(
            f"| {role} | {ours_answer[0]} | {ours_seconds * 1000:.1f} ms "
            f"| {naive_seconds * 1000:.1f} ms | {naive_seconds / ours_seconds:.1f} |"
        )


def profile_page(engine: Engine, person: Person) -> None:
    """Where the province user's page goes in this process (cProfile, 20 pages)."""
    profiler = cProfile.Profile()
    profiler.runcall(timed, engine, partial(ours, caller=caller_of(person)), 20)
    print(f"\ncProfile of 20 pages of {PAGE} of the province user in this process, by own time:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


def explain_page(engine: Engine, person: Person) -> None:
    queries = captured_queries(engine, lambda session: ours(session, caller_of(person)))
    print(f"\nEXPLAIN ANALYZE, GET /api/v2/region/?limit={PAGE} of the province user:")
    explain(engine, queries)


# Running


def run(args: argparse.Namespace) -> None:
    with (
        service_database(args.database_url, "DATAPOINTS_DATABASE_URL") as database,
        running_stack(PROCESSES, settings={**SETTINGS, **database}) as stack,
    ):
        engine = create_engine(database_url(stack, "datapoints"))
        started = time.perf_counter()
        people = load(engine, stack, args)
        print(
            f"setup: {args.regions} regions with their closure, {args.grants} granted users, "
            f"4 signed-in users, in {time.perf_counter() - started:.1f} s"
        )
        timings = measure_list(stack.url("gateway"), people, args.duration)
        print_timings(timings, "PostgreSQL" if args.database_url else "SQLite")
        measure_csv(stack, engine, people["staff"], args.csv_runs)
        if args.profile:
            profile_csv(engine, people["staff"])
        compare_naive(engine, people, args.naive_runs)
        if args.profile:
            profile_page(engine, people["province"])
        if args.explain and engine.dialect.name == "postgresql":
            explain_page(engine, people["province"])
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL; its database is (re)created")
    parser.add_argument("--regions", type=int, default=20_000)
    parser.add_argument("--grants", type=int, default=2_000, help="made-up users with a grant")
    parser.add_argument("--duration", type=float, default=10, help="seconds per list case")
    parser.add_argument("--csv-runs", type=int, default=10)
    parser.add_argument("--naive-runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="2 s per case, fewer runs")
    parser.add_argument(
        "--explain", action="store_true", help="PostgreSQL: EXPLAIN ANALYZE the province page"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the CSV and the province page in this process",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.csv_runs, args.naive_runs = 2, 3, 5
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
