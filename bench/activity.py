"""Activity upload and download through the gateway: periods/s and the service's peak memory.

Starts auth_service, activity_service and the gateway under gunicorn on free loopback
ports (a private redis-server, a temporary var folder), logs in as the admin, uploads
`--members` members x `--periods` periods in batches of `--batch` members
(`POST /sample/posts`, one batch after another, or `--clients` at a time), then reads
everything back (`GET /sample/gets`, streamed) and checks the count. Memory is each
activity_service gunicorn worker's peak resident size (VmHWM in /proc/<pid>/status): at
start, over the uploads, then, after resetting it, over the full read alone.

activity_service runs on SQLite in the temporary folder, or on PostgreSQL with
`--database-url postgresql+psycopg://postgres@127.0.0.1:5432/flotilla_bench_activity`
(that database is created for the run and dropped afterwards).

    .venv/bin/python bench/activity.py [--database-url URL] [--members 10000] [--periods 10]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import psutil
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from activity_service.times import render_document_time
from devstack.stack import Stack, running_stack

ADMIN = "admin"
PROCESSES = ["auth", "activity", "gateway"]
ZONES = ("America/Los_Angeles", "Asia/Kolkata", "Europe/Berlin", "UTC", "Australia/Sydney")
READ_CHUNK = 256 * 1024


def make_batches(members: int, periods: int, batch: int, seed: int = 7) -> list[bytes]:
    """Upload bodies with random (realistic, rarely repeating) times over two years."""
    rng = random.Random(seed)
    origin = datetime(2020, 1, 1)
    bodies = []
    for first in range(0, members, batch):
        entries = []
        for number in range(first, min(first + batch, members)):
            starts = sorted(rng.sample(range(2 * 365 * 1440), periods))
            entries.append(
                {
                    "id": f"W{number:08d}",
                    "real_name": f"Member {number}",
                    "tz": rng.choice(ZONES),
                    "activity_periods": [
                        _period(origin + timedelta(minutes=start), rng.randrange(1, 600))
                        for start in starts
                    ],
                }
            )
        bodies.append(json.dumps({"members": entries}, indent="\t").encode())
    return bodies


def _period(start: datetime, minutes: int) -> dict[str, str]:
    end = start + timedelta(minutes=minutes)
    return {
        "start_time": render_document_time(start),
        "end_time": render_document_time(end, pad_hour=False),
    }


@contextmanager
def activity_database(url: str | None) -> Iterator[dict[str, str]]:
    """The stack's own SQLite file (no setting), or a PostgreSQL database created and
    dropped for the run."""
    if url is None:
        yield {}
        return
    target = make_url(url)
    name = target.database or "flotilla_bench_activity"
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = target.set(database=name).render_as_string(hide_password=False)
    try:
        yield {"ACTIVITY_DATABASE_URL": database}
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def worker_peaks(master: subprocess.Popen[bytes]) -> list[int]:
    """VmHWM in KiB of each gunicorn worker (the master's children)."""
    peaks: list[int] = []
    for child in psutil.Process(master.pid).children():
        status = Path(f"/proc/{child.pid}/status").read_text()
        peaks.extend(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")
        )
    return peaks


def reset_peaks(master: subprocess.Popen[bytes]) -> None:
    """Restart each worker's VmHWM from its current size (Linux: `5` to clear_refs)."""
    for child in psutil.Process(master.pid).children():
        Path(f"/proc/{child.pid}/clear_refs").write_text("5")


def login(gateway: str, password: str) -> str:
    response = requests.post(
        f"{gateway}/auth/token/", json={"username": ADMIN, "password": password}, timeout=30
    )
    response.raise_for_status()
    return str(response.json()["access"])


def upload(gateway: str, token: str, bodies: list[bytes], clients: int) -> tuple[list[float], int]:
    """Each batch's latency, and the periods the service reports as added; `clients`
    connections send batches at the same time (1: one after another)."""
    local = threading.local()

    def send(body: bytes) -> tuple[float, int]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        response = local.session.post(
            f"{gateway}/sample/posts",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=300,
        )
        latency = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"upload failed: {response.status_code} {response.text[:500]}")
        return latency, int(response.json()["periods_added"])

    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(send, bodies))
    return [latency for latency, _ in results], sum(added for _, added in results)


def read_all(session: requests.Session, gateway: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    with session.get(f"{gateway}/sample/gets", stream=True, timeout=300) as response:
        response.raise_for_status()
        body = b"".join(response.iter_content(READ_CHUNK))
    return time.perf_counter() - started, body


def run(args: argparse.Namespace) -> None:
    with (
        activity_database(args.database_url) as database,
        running_stack(PROCESSES, settings={"LOG_LEVEL": "WARNING", **database}) as stack,
    ):
        token = login(stack.url("gateway"), stack.environment["ADMIN_PASSWORD"])
        measure(args, stack, stack.processes["activity"], token)


def measure(
    args: argparse.Namespace, stack: Stack, activity: subprocess.Popen[bytes], token: str
) -> None:
    gateway = stack.url("gateway")
    bodies = make_batches(args.members, args.periods, args.batch)
    total = args.members * args.periods
    peak_at_start = max(worker_peaks(activity))
    started = time.perf_counter()
    latencies, added = upload(gateway, token, bodies, args.clients)
    upload_seconds = time.perf_counter() - started
    if added != total:
        raise SystemExit(f"the service added {added} periods, expected {total}")
    peak_after_upload = max(worker_peaks(activity))
    reset_peaks(activity)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    read_seconds, body = read_all(session, gateway)
    peak_during_read = max(worker_peaks(activity))
    document = json.loads(body)
    periods_read = sum(len(member["activity_periods"]) for member in document["members"])
    if periods_read != total:
        raise SystemExit(f"read {periods_read} periods, expected {total}")
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(
        "| database | periods | upload clients | upload periods/s | batch p50 | batch max | "
        "read s | read periods/s | document MB | worker VmHWM at start | uploading | reading |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {database} | {total:,} | {args.clients} | {total / upload_seconds:,.0f} | "
        f"{statistics.median(latencies) * 1000:.0f} ms | {max(latencies) * 1000:.0f} ms | "
        f"{read_seconds:.2f} | {total / read_seconds:,.0f} | {len(body) / 1e6:.1f} | "
        f"{peak_at_start / 1024:.0f} MiB | {peak_after_upload / 1024:.0f} MiB | "
        f"{peak_during_read / 1024:.0f} MiB |"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", help="PostgreSQL URL; its database is (re)created")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--periods", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=1, help="concurrent upload connections")
    args = parser.parse_args()
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
