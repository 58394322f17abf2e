"""Gateway overhead: the same light authenticated GET, direct to a service, through our
gateway, and through HAProxy doing the same job (route + RS256 check).

Starts auth_service (gunicorn, the services' settings) and the gateway (gunicorn with its
event-loop worker: gateway/gunicorn_conf.py) on free loopback ports, with a private
redis-server and SQLite, logs in as the admin, and starts HAProxy (Debian package
`haproxy`, 2.6+) configured to route the same path to auth_service after verifying the
token with `jwt_verify` against auth_service's public key, and checking alg, exp, iss and
aud. Then, for each connection count, runs `wrk` (Debian package `wrk`) against
`GET /users/<admin>` on each of the three targets in turn.

Prints a Markdown table, one row per connection count: requests/s, p50 and p99 per
target; the gateway's throughput against direct's and HAProxy's; the added p50 (gateway
p50 - direct p50); and the CPU time (user + system) the gateway's gunicorn master and
workers spent per request during the gateway's run. Answers other than 2xx/3xx and wrk's
socket errors are counted, not fatal, and listed after the table, as are the gateway
log's lines above info level (or any access line with a 4xx/5xx status). The load average
of the machine is printed before and after.

    .venv/bin/python bench/gateway.py [--duration 10] [--connections 1,16,64,256]
        [--gateway-workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import requests
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.wrk_runner import Result, run_wrk
from devstack.redis_server import free_port
from devstack.stack import RATE_LIMITS_OFF, RunningStack, running_stack, stop_processes

ADMIN = "admin"
TARGETS = ("direct", "gateway", "haproxy")
HAPROXY_OLDEST = (2, 6)
VERIFY_TOKEN = (  # HAProxy 2.6 converters: the same checks as the gateway's, minus revocation
    "http-request set-var(txn.bearer) http_auth_bearer",
    "http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')",
    "http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')",
    "http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')",
    "http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')",
    "acl rs256 var(txn.alg) -m str RS256",
    'acl signed var(txn.bearer),jwt_verify(txn.alg,"{key}") -m int 1',
    "acl expired date,neg,add(txn.exp) lt 0",
    "acl ours var(txn.iss) -m str flotilla",
    "acl for_us var(txn.aud) -m str flotilla",
    "http-request deny deny_status 401 unless rs256 signed ours for_us !expired",
)
HAPROXY_CONFIG = "\n".join(
    [
        "global",
        "    maxconn 4096",
        "defaults",
        "    mode http",
        "    timeout connect 1s",
        "    timeout client 30s",
        "    timeout server 30s",
        "frontend gateway",
        "    bind 127.0.0.1:{port}",
        *(f"    {line}" for line in VERIFY_TOKEN),
        "    use_backend auth if {{ path_beg /users/ }}",
        "backend auth",
        "    http-reuse always",
        "    server auth {upstream}",
        "",
    ]
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10, help="seconds per cell")
    parser.add_argument("--connections", default="1,16,64,256")
    parser.add_argument(
        "--gateway-workers", help="GUNICORN_WORKERS of the gateway only (default: as the services)"
    )
    args = parser.parse_args()
    problem = missing_tools()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    run(args)
    return 0


def missing_tools() -> str | None:
    """What keeps the benchmark from running: wrk or HAProxy 2.6+ absent."""
    missing = [tool for tool in ("wrk", "haproxy") if shutil.which(tool) is None]
    if missing:
        return f"missing: {', '.join(missing)} (apt-get install {' '.join(missing)})"
    version = haproxy_version()
    if version < HAPROXY_OLDEST:
        return f"HAProxy {'.'.join(map(str, version))}: jwt_verify needs 2.6 or later here"
    return None


def haproxy_version() -> tuple[int, int]:
    output = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout
    found = re.search(r"version (\d+)\.(\d+)", output)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def run(args: argparse.Namespace) -> None:
    workers = {"GUNICORN_WORKERS": args.gateway_workers} if args.gateway_workers else {}
    print(f"load average before: {load_average()}")
    with running_stack(
        ["auth", "gateway"], settings=RATE_LIMITS_OFF, process_settings={"gateway": workers}
    ) as stack:
        targets = {"direct": stack.url("auth"), "gateway": stack.url("gateway")}
        haproxy: dict[str, subprocess.Popen[bytes]] = {}
        try:
            haproxy["haproxy"], targets["haproxy"] = start_haproxy(stack)
            token = login(stack)
            connection_counts = [int(c) for c in args.connections.split(",")]
            gateway_pid = stack.processes["gateway"].pid
            print(f"gateway workers: {len(psutil.Process(gateway_pid).children())}")
            report(targets, token, connection_counts, args.duration, gateway_pid)
        finally:
            stop_processes(haproxy)
            print(f"load average after: {load_average()}")
            print_log_problems(stack.log_path("gateway"))


def load_average() -> str:
    return ", ".join(f"{load:.2f}" for load in os.getloadavg()) + f" ({os.cpu_count()} cores)"


def start_haproxy(stack: RunningStack) -> tuple[subprocess.Popen[bytes], str]:
    """HAProxy in front of auth_service, verifying tokens with auth's public key."""
    var = stack.var
    private_pem = sorted((var / "keys").glob("*.pem"))[-1].read_bytes()
    public_key = serialization.load_pem_private_key(private_pem, password=None).public_key()
    key_file = var / "haproxy-public.pem"
    key_file.write_bytes(
        public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    port = free_port()
    upstream = stack.url("auth").removeprefix("http://")
    config = var / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, key=key_file, upstream=upstream))
    process = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(50):
        if process.poll() is not None:
            raise RuntimeError(f"haproxy exited with {process.returncode}")
        try:
            requests.get(url, timeout=0.2)
            return process, url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("haproxy did not answer within 5 s")


def login(stack: RunningStack) -> str:
    password = stack.environment["ADMIN_PASSWORD"]
    response = requests.post(
        stack.url("gateway") + "/auth/token/",
        json={"username": ADMIN, "password": password},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access"])


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children, e.g. gunicorn's workers."""
    process = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])


def report(
    targets: dict[str, str],
    token: str,
    connection_counts: list[int],
    duration: int,
    gateway_pid: int,
) -> None:
    """One table row per connection count; the last column is the CPU time the gateway's
    processes spent per request (steadier than latency on a shared machine)."""
    url_path = f"/users/{ADMIN}"
    auth = {"Authorization": f"Bearer {token}"}
    header = " | ".join(f"{name} req/s | {name} p50 | {name} p99" for name in targets)
    print(
        f"| connections | {header} | gateway/direct | gateway/haproxy | added p50"
        " | gateway CPU/request |"
    )
    print("|---" * (1 + 3 * len(targets) + 4) + "|")
    troubles: list[str] = []
    for connections in connection_counts:
        results: dict[str, Result] = {}
        for name, url in targets.items():
            started = cpu_seconds(gateway_pid)
            results[name] = run_wrk(url + url_path, auth, connections, duration, strict=False)
            if name == "gateway":
                gateway_cpu = (cpu_seconds(gateway_pid) - started) / results[name].requests
            troubles += trouble(name, connections, results[name])
        print(row(connections, results, gateway_cpu), flush=True)
    for line in troubles:
        print(line)


def row(connections: int, results: dict[str, Result], gateway_cpu: float) -> str:
    cells = " | ".join(
        f"{r.requests_per_second:.0f} | {r.p50_ms:.2f} ms | {r.p99_ms:.2f} ms"
        for r in results.values()
    )
    ours, direct, haproxy = results["gateway"], results["direct"], results["haproxy"]
    versus_direct = ours.requests_per_second / direct.requests_per_second
    versus_haproxy = ours.requests_per_second / haproxy.requests_per_second
    return (
        f"| {connections} | {cells} | {versus_direct:.0%} | {versus_haproxy:.0%}"
        f" | {ours.p50_ms - direct.p50_ms:.2f} ms | {gateway_cpu * 1e6:.0f} µs |"
    )


def trouble(name: str, connections: int, result: Result) -> list[str]:
    if not (result.failed or result.socket_errors):
        return []
    return [
        f"{name}, {connections} connections: {result.failed} answers not 2xx/3xx,"
        f" {result.socket_errors} socket errors ({result.socket_error_kinds}), of {result.requests}"
    ]


def print_log_problems(log_path: Path) -> None:
    """The gateway log's warnings, errors and failed answers, counted by kind."""
    problems: Counter[str] = Counter()
    for line in log_path.read_text(errors="replace").splitlines():
        kind = log_problem(line)
        if kind is not None:
            problems[kind] += 1
    print(f"gateway log: {sum(problems.values())} problem lines")
    for kind, count in problems.most_common(20):
        print(f"  {count}: {kind}")


def log_problem(line: str) -> str | None:
    """A JSON line above info level or with a 4xx/5xx status, or one of gunicorn's own
    lines at warning level and above (or a traceback's); None for the rest."""
    try:
        entry = json.loads(line)
    except ValueError:
        shown = re.search(r"\[(WARNING|ERROR|CRITICAL)\]|Traceback|Error", line)
        return line[:160] if shown else None
    if not isinstance(entry, dict):
        return None
    status = entry.get("status")
    if entry.get("level") == "info" and not (isinstance(status, int) and status >= 400):
        return None
    fields = (entry.get(key) for key in ("level", "message", "status", "code", "error"))
    return " ".join(str(field) for field in fields if field is not None)[:160]


if __name__ == "__main__":
    raise SystemExit(main())
