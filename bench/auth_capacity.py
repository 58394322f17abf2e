"""How many password-hashing requests per second auth_service serves, on this machine.

Runs auth_service as the suite does (`devstack.stack.running_stack(["auth"])`: gunicorn,
its production password-hashing cost) and drives it directly, without the gateway, with
concurrent clients, each on a keep-alive connection, for a fixed time per route:

- create (`POST /users/`): an argon2id hash, one row, one outbox row;
- register (`POST /register/`, the image API's sign-up): the same, plus an API token;
- login (`POST /auth/token/`): an argon2id verification, a session row, two signatures
  (the accounts made by create, round robin).

The baseline, measured in the same run just before each route's: argon2id hashes per
second computed in this process with the same costs, on as many threads as the machine
has cores, and the CPU time each hash took. Each route's requests per second is printed
with its ratio to that baseline, and with the CPU time auth_service's processes spent per
request: the cores divided by it bound the rate when nothing else runs on the machine.

    .venv/bin/python bench/auth_capacity.py [--clients 8 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import requests
from argon2 import PasswordHasher, Type

from auth_service.settings import AuthSettings
from devstack.stack import RATE_LIMITS_OFF, running_stack
from servicekit.settings import load_settings

PASSWORD = "bench-capacity-password"
SETTINGS = {
    **RATE_LIMITS_OFF,
    "LOGIN_RATE_LIMIT_USERNAME": "off",
    "LOGIN_RATE_LIMIT_ADDRESS": "off",
    "LOG_LEVEL": "WARNING",
}
TIMEOUT = 60.0

# One request of a route: (session, base URL, unique number) -> status code.
Call = Callable[[requests.Session, str, int], int]


@dataclass
class Run:
    route: str
    clients: int
    seconds: float
    latencies: list[float]
    failures: int
    succeeded: list[int]  # the unique numbers of the requests answered with a 2xx

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def hasher_of(settings: AuthSettings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.hash_time_cost,
        memory_cost=settings.hash_memory_kib,
        parallelism=settings.hash_parallelism,
        type=Type.ID,
    )


@dataclass
class Baseline:
    per_second: float
    cpu_per_hash: float  # seconds of CPU, all threads of this process


def baseline_hashes(hasher: PasswordHasher, threads: int, seconds: float) -> Baseline:
    """argon2id hashes in this process, `threads` hashing at once for `seconds`."""
    deadline = time.monotonic() + seconds
    counts = [0] * threads

    def hash_until_deadline(index: int) -> None:
        while time.monotonic() < deadline:
            hasher.hash(PASSWORD)
            counts[index] += 1

    started, cpu_started = time.monotonic(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(hash_until_deadline, range(threads)))
    hashes = sum(counts)
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
    return Baseline(hashes / elapsed, cpu / hashes)


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (gunicorn's master and workers)."""
    master = psutil.Process(pid)
    times = [process.cpu_times() for process in (master, *master.children(recursive=True))]
    return sum(spent.user + spent.system for spent in times)


def user_name(prefix: str, number: int) -> str:
    return f"{prefix}{number}"


def create_call(prefix: str) -> Call:
    def create(session: requests.Session, url: str, number: int) -> int:
        name = user_name(prefix, number)
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        return session.post(f"{url}/users/", json=body, timeout=TIMEOUT).status_code

    return create


def register_call(prefix: str) -> Call:
    def register(session: requests.Session, url: str, number: int) -> int:
        name = user_name(prefix, number)
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        return session.post(f"{url}/register/", json=body, timeout=TIMEOUT).status_code

    return register


def login_call(names: list[str]) -> Call:
    def login(session: requests.Session, url: str, number: int) -> int:
        body = {"username": names[number % len(names)], "password": PASSWORD}
        return session.post(f"{url}/auth/token/", json=body, timeout=TIMEOUT).status_code

    return login


def drive(url: str, route: str, call: Call, clients: int, seconds: float) -> Run:
    """`clients` threads calling as fast as answers come, for `seconds`."""
    numbers: Iterator[int] = itertools.count()
    numbers_lock = threading.Lock()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    succeeded: list[list[int]] = [[] for _ in range(clients)]
    failures = [0] * clients
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                with numbers_lock:
                    number = next(numbers)
                started = time.monotonic()
                status = call(session, url, number)
                if status // 100 == 2:
                    latencies[index].append(time.monotonic() - started)
                    succeeded[index].append(number)
                else:
                    failures[index] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    elapsed = time.monotonic() - started
    return Run(
        route,
        clients,
        elapsed,
        list(itertools.chain(*latencies)),
        sum(failures),
        list(itertools.chain(*succeeded)),
    )


def created_names(run: Run, prefix: str) -> list[str]:
    """The accounts a create run made."""
    return [user_name(prefix, number) for number in run.succeeded]


def report(run: Run, cpu_per_request: float, baseline: Baseline) -> None:
    cores = os.cpu_count() or 1
    print(
        f"{run.route:9} {run.clients:3} clients: {run.per_second:5.1f} req/s "
        f"({run.per_second / baseline.per_second:4.2f} x baseline {baseline.per_second:4.1f}/s), "
        f"p50 {run.percentile(0.5):5.0f} ms, p99 {run.percentile(0.99):5.0f} ms, "
        f"{len(run.latencies)} ok, {run.failures} failed; server CPU "
        f"{cpu_per_request * 1000:4.0f} ms/request ({cpu_per_request / baseline.cpu_per_hash:4.2f}"
        f" x baseline {baseline.cpu_per_hash * 1000:.0f} ms/hash): at most "
        f"{cores / cpu_per_request:4.1f} req/s on {cores} cores; load {os.getloadavg()[0]:.1f}"
    )


@dataclass
class Bench:
    url: str
    pid: int
    hasher: PasswordHasher
    seconds: float
    baseline_seconds: float

    def measure(self, route: str, call: Call, clients: int) -> Run:
        """One route's run, reported against a baseline measured just before it (the
        machine's other load moves both alike), with the server's CPU per request."""
        baseline = baseline_hashes(self.hasher, os.cpu_count() or 1, self.baseline_seconds)
        cpu_before = cpu_seconds(self.pid)
        run = drive(self.url, route, call, clients, self.seconds)
        requests_served = max(1, len(run.latencies) + run.failures)
        report(run, (cpu_seconds(self.pid) - cpu_before) / requests_served, baseline)
        return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    arguments = parser.parse_args()

    with running_stack(["auth"], settings=SETTINGS) as stack:
        settings = load_settings(AuthSettings, stack.environment)
        hasher = hasher_of(settings)
        one_hash = statistics.median(timed(hasher.hash, PASSWORD) for _ in range(5))
        print(
            f"argon2id: time_cost={settings.hash_time_cost}, "
            f"memory={settings.hash_memory_kib} KiB, parallelism={settings.hash_parallelism}; "
            f"one hash alone {one_hash * 1000:.0f} ms; baseline: hashes/s in process on "
            f"{os.cpu_count()} threads, its CPU per hash"
        )
        bench = Bench(
            stack.url("auth"),
            stack.processes["auth"].pid,
            hasher,
            arguments.seconds,
            arguments.baseline_seconds,
        )
        for clients in arguments.clients:
            prefix = f"cap{secrets.token_hex(3)}c"
            created = bench.measure("create", create_call(prefix), clients)
            bench.measure("register", register_call(f"{prefix}r"), clients)
            bench.measure("login", login_call(created_names(created, prefix)), clients)


def timed(function: Callable[[str], object], argument: str) -> float:
    started = time.perf_counter()
    function(argument)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
