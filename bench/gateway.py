"""Gateway overhead: the same light authenticated GET, direct to a service and through the gateway.

Starts auth_service and the gateway under gunicorn on free loopback ports (with a private
redis-server and SQLite), logs in as the admin, then runs `wrk` (Debian package `wrk`)
against `GET /users/<admin>` at 1 and 32 connections, direct and through the gateway.
Prints requests/s, p50 and p99 for both and the ratios, as a Markdown table.

    .venv/bin/python bench/gateway.py [--duration 10] [--connections 1,32]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from servicekit.config import SERVICE_PORTS
from servicekit.devstack import (
    Stack,
    prepare,
    start_processes,
    stop_processes,
    wait_until_ready,
)
from servicekit.redisserver import free_port, start_redis

ADMIN = "admin"
# The load generator is one client: rate limits would measure themselves, not the gateway.
UNLIMITED = {
    name: "off"
    for name in (
        "GATEWAY_RATE_LIMIT",
        "GATEWAY_USER_RATE_LIMIT",
        "GATEWAY_LOGIN_RATE_LIMIT",
        "GATEWAY_LOGIN_USER_RATE_LIMIT",
    )
}
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def parse_latency(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def run_wrk(url: str, token: str, connections: int, duration: int) -> Result:
    threads = min(connections, 2)
    output = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
         "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = parse_latency(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = parse_latency(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    return Result(rps, p50, p99)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="1,32")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        var = Path(scratch)
        redis_process, redis_url = start_redis(var / "redis")
        ports = {name: free_port() for name in SERVICE_PORTS}
        environment = {"REDIS_URL": redis_url, **UNLIMITED}
        stack = Stack(var=var, ports=ports, environment=environment)
        processes = {}
        try:
            prepare(stack)
            processes = start_processes(stack, ["auth", "gateway"])
            wait_until_ready(stack, ["auth", "gateway"])
            token = login(stack)
            report(stack, token, [int(c) for c in args.connections.split(",")], args.duration)
        finally:
            stop_processes(processes)
            redis_process.terminate()
            redis_process.wait()
    return 0


def login(stack: Stack) -> str:
    password = stack.environment["ADMIN_PASSWORD"]
    response = requests.post(
        stack.url("gateway") + "/auth/token/",
        json={"username": ADMIN, "password": password},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access"])


def report(stack: Stack, token: str, connection_counts: list[int], duration: int) -> None:
    path = f"/users/{ADMIN}"
    print(
        "| connections | direct req/s | gateway req/s | throughput kept | direct p50 | "
        "gateway p50 | added p50 | direct p99 | gateway p99 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for connections in connection_counts:
        direct = run_wrk(stack.url("auth") + path, token, connections, duration)
        gateway = run_wrk(stack.url("gateway") + path, token, connections, duration)
        kept = gateway.requests_per_second / direct.requests_per_second
        print(
            f"| {connections} | {direct.requests_per_second:.0f} | "
            f"{gateway.requests_per_second:.0f} | {kept:.0%} | {direct.p50_ms:.2f} ms | "
            f"{gateway.p50_ms:.2f} ms | {gateway.p50_ms - direct.p50_ms:.2f} ms | "
            f"{direct.p99_ms:.2f} ms | {gateway.p99_ms:.2f} ms |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
