"""Scheduler timing: how late calls fire, alone and 1,000 at one instant; and how long one
POST of 10,000 timestamps takes to be accepted.

Starts auth_service, scheduler_service and the gateway under gunicorn, and the RQ worker
(the dev stack's command), on free loopback ports with a private redis-server and SQLite
in a temporary folder, plus a local target server that records when each call arrives and
counts Idempotency-Keys. Lateness is arrival at the target minus the call's instant (one
host, one clock). Prints a Markdown table.

    .venv/bin/python bench/scheduler.py [--burst 1000] [--singles 20] [--bulk 10000]

`--whole-stack` measures bursts instead with everything `make run` starts running
(devstack's ALL_PROCESSES: every service, the gateway, the RQ workers, the stream
consumers): for each size (`--sizes 200,1000`), `--runs 5` runs, each on a fresh target
and a fresh stack (the worker's connections start cold, as after a deploy), all calls due
in the same second 12 s after scheduling. Per run: the load average, lateness p50/p99/max,
when the worker claimed the calls (from the attempts it recorded), how many connections the
target accepted, and the machine's listen-queue overflows during the burst (a connection
attempt dropped there is retried by the kernel a second later).

    .venv/bin/python bench/scheduler.py --whole-stack [--sizes 200,1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.stack import ALL_PROCESSES, RunningStack, running_stack

PROCESSES = ["auth", "scheduler", "gateway", "worker"]
Calls = dict[int, str]  # call id -> its instant, as the API renders it
Figures = dict[str, float]
SETTINGS = {
    "LOG_LEVEL": "WARNING",
    # The admin's login is not measured: its password hash may be a cheap one.
    "PASSWORD_HASH_TIME_COST": "1",
}


class Arrivals:
    """What the target saw: (arrival time, Idempotency-Key) per request; connections."""

    def __init__(self) -> None:
        self.items: list[tuple[float, str]] = []
        self.connections = 0
        self.lock = threading.Lock()

    def connected(self) -> None:
        with self.lock:
            self.connections += 1

    def add(self, key: str) -> None:
        at = time.time()
        with self.lock:
            self.items.append((at, key))

    def snapshot(self) -> list[tuple[float, str]]:
        with self.lock:
            return list(self.items)


def target_server(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real API would offer
        disable_nagle_algorithm = True  # headers and body leave at once, as real servers do

        def setup(self) -> None:
            super().setup()
            arrivals.connected()

        def do_GET(self) -> None:
            arrivals.add(self.headers.get("Idempotency-Key", ""))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def schedule(gateway: str, token: str, instants: list[datetime], url: str) -> tuple[Calls, float]:
    body = {"timestamps": ", ".join(iso(moment) for moment in instants), "url": url}
    started = time.perf_counter()
    response = requests.post(
        f"{gateway}/api/schedule-api/",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return {call["id"]: call["timestamp"] for call in response.json()}, elapsed


def lateness(calls: Calls, arrivals: list[tuple[float, str]]) -> list[float]:
    """Milliseconds between each call's instant and its first arrival."""
    first: dict[str, float] = {}
    for at, key in arrivals:
        first.setdefault(key, at)
    late = []
    for call_id, stamp in calls.items():
        if str(call_id) in first:
            due = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            late.append((first[str(call_id)] - due) * 1000)
    return late


def wait_for(arrivals: Arrivals, keys: set[str], deadline: float) -> None:
    while time.time() < deadline:
        if keys <= {key for _at, key in arrivals.snapshot()}:
            return
        time.sleep(0.1)


def measure_singles(gateway: str, token: str, url: str, arrivals: Arrivals, count: int) -> Figures:
    start = datetime.now(UTC) + timedelta(seconds=3)
    instants = [start + timedelta(seconds=0.5 * index) for index in range(count)]
    calls, _ = schedule(gateway, token, instants, url)
    wait_for(arrivals, {str(i) for i in calls}, instants[-1].timestamp() + 15)
    time.sleep(1)
    return report(calls, arrivals.snapshot())


def measure_burst(gateway: str, token: str, url: str, arrivals: Arrivals, count: int) -> Figures:
    calls = fire_burst(gateway, token, url, arrivals, count)
    return report(calls, arrivals.snapshot())


def fire_burst(gateway: str, token: str, url: str, arrivals: Arrivals, count: int) -> Calls:
    """`count` calls due in the same second, 11-12 s ahead; returns once they all arrived."""
    due = (datetime.now(UTC) + timedelta(seconds=12)).replace(microsecond=0)
    calls, _ = schedule(gateway, token, [due] * count, url)
    wait_for(arrivals, {str(i) for i in calls}, due.timestamp() + 30)
    time.sleep(2)  # a duplicate would arrive now
    return calls


def report(calls: Calls, arrivals: list[tuple[float, str]]) -> Figures:
    keys = Counter(key for _at, key in arrivals if key and int(key) in calls)
    late = lateness(calls, arrivals)
    return {
        "calls": len(calls),
        "fired": len(keys),
        "duplicates": sum(keys.values()) - len(keys),
        "p50": percentile(late, 0.50) if late else float("nan"),
        "p99": percentile(late, 0.99) if late else float("nan"),
        "max": max(late) if late else float("nan"),
    }


def measure_bulk(gateway: str, token: str, url: str, count: int) -> float:
    start = datetime.now(UTC) + timedelta(days=1)
    instants = [start + timedelta(seconds=index) for index in range(count)]
    calls, elapsed = schedule(gateway, token, instants, url)
    assert len(calls) == count
    return elapsed


def login(stack: RunningStack) -> str:
    response = requests.post(
        stack.url("gateway") + "/auth/token/",
        json={"username": "admin", "password": stack.environment["ADMIN_PASSWORD"]},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access"])


def listen_overflows() -> int:
    """This machine's count of connections dropped because a listen queue was full."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[0::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            counters = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(counters.get("ListenOverflows", 0))
    return 0


def claim_lateness(stack: RunningStack, calls: Calls) -> list[float]:
    """Milliseconds between each call's instant and its first claim by the worker."""
    with closing(sqlite3.connect(stack.var / "scheduler.db")) as connection:
        rows = connection.execute(
            "SELECT call_id, started_at FROM call_attempts WHERE number = 1"
        ).fetchall()
    claimed = {int(call_id): moment for call_id, moment in rows}
    late = []
    for call_id, stamp in calls.items():
        if call_id in claimed:
            due = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            at = datetime.fromisoformat(claimed[call_id]).replace(tzinfo=UTC)
            late.append((at - due).total_seconds() * 1000)
    return late


def whole_stack_burst(count: int) -> Figures:
    """One burst on a fresh target and a fresh whole stack."""
    arrivals = Arrivals()
    target = target_server(arrivals)
    url = f"http://127.0.0.1:{target.server_port}/hook"
    # Either form of an allow-list entry: a host alone, or a host and port.
    allowed = f"127.0.0.1:{target.server_port}"
    try:
        with running_stack(
            ALL_PROCESSES, settings={**SETTINGS, "SCHEDULER_ALLOWED_HOSTS": allowed}
        ) as stack:
            token = login(stack)
            time.sleep(2)  # the worker's scheduler process starts after the worker registers
            load = os.getloadavg()[0]
            overflows = listen_overflows()
            warm = arrivals.connections
            calls = fire_burst(stack.url("gateway"), token, url, arrivals, count)
            figures = report(calls, arrivals.snapshot())
            claims = claim_lateness(stack, calls)
    finally:
        target.shutdown()
    figures.update(
        load=load,
        load_after=os.getloadavg()[0],
        claimed_p99=percentile(claims, 0.99) if claims else float("nan"),
        connections=arrivals.connections - warm,
        overflows=listen_overflows() - overflows,
    )
    return figures


def main_whole_stack(sizes: list[int], runs: int) -> int:
    rows = []
    for count in sizes:
        for run in range(1, runs + 1):
            figures = whole_stack_burst(count)
            rows.append((count, run, figures))
            print(f"{count} calls, run {run}: {figures}", file=sys.stderr, flush=True)
    print(f"cores: {os.cpu_count()}; processes: {', '.join(ALL_PROCESSES)}")
    print(
        "| calls | run | load (1 min) before → after | fired | duplicates | lateness p50 | p99 "
        "| max | claimed p99 | connections | listen overflows |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for count, run, result in rows:
        print(
            f"| {count} | {run} | {result['load']:.2f} → {result['load_after']:.2f} "
            f"| {result['fired']:.0f} | {result['duplicates']:.0f} | {result['p50']:.0f} ms "
            f"| {result['p99']:.0f} ms | {result['max']:.0f} ms | {result['claimed_p99']:.0f} ms "
            f"| {result['connections']:.0f} | {result['overflows']:.0f} |"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--bulk", type=int, default=10_000)
    parser.add_argument("--whole-stack", action="store_true", help="bursts with every process")
    parser.add_argument("--sizes", default="200,1000", help="burst sizes (--whole-stack)")
    parser.add_argument("--runs", type=int, default=5, help="runs per size (--whole-stack)")
    args = parser.parse_args()
    if args.whole_stack:
        return main_whole_stack([int(size) for size in args.sizes.split(",")], args.runs)
    arrivals = Arrivals()
    target = target_server(arrivals)
    url = f"http://127.0.0.1:{target.server_port}/hook"
    try:
        with running_stack(PROCESSES, settings=SETTINGS) as stack:
            token = login(stack)
            time.sleep(2)  # the worker's scheduler process starts after the worker registers
            load = os.getloadavg()[0]
            singles = measure_singles(stack.url("gateway"), token, url, arrivals, args.singles)
            burst = measure_burst(stack.url("gateway"), token, url, arrivals, args.burst)
            bulk = measure_bulk(stack.url("gateway"), token, url, args.bulk)
    finally:
        target.shutdown()
    print(f"load average before: {load:.2f}; cores: {os.cpu_count()}")
    print("| case | calls | fired | duplicates | lateness p50 | p99 | max |")
    print("|---|---|---|---|---|---|---|")
    for name, result in ((f"{args.singles} single calls, 0.5 s apart", singles),
                         (f"{args.burst} calls due in the same instant", burst)):  # fmt: skip
        print(
            f"| {name} | {result['calls']} | {result['fired']} | {result['duplicates']} | "
            f"{result['p50']:.1f} ms | {result['p99']:.1f} ms | {result['max']:.1f} ms |"
        )
    print(f"\nOne POST of {args.bulk} timestamps accepted in {bulk:.2f} s (through the gateway).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
