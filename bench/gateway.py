"""Gateway overhead: the same light authenticated GET, direct to a service, through our
gateway, and through HAProxy doing the same job (route + RS256 check).

Starts auth_service and the gateway under gunicorn on free loopback ports (with a private
redis-server and SQLite), logs in as the admin, then runs `wrk` (Debian package `wrk`)
against `GET /users/<admin>`. With `--haproxy` (Debian package `haproxy`, 2.6+), HAProxy
is configured to route the same path to auth_service after verifying the token with
`jwt_verify` against auth_service's public key, and checking alg, exp, iss and aud.
Prints requests/s, p50 and p99 per target and connection count, the ratios, and the CPU
time the gateway's processes spent per request.

    .venv/bin/python bench/gateway.py [--duration 10] [--connections 1,16,32,64] [--haproxy]
        [--gateway-workers N] [--gateway-threads N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.wrk_runner import Result, run_wrk
from devstack.redis_server import free_port
from devstack.stack import RATE_LIMITS_OFF, RunningStack, running_stack, stop_processes

ADMIN = "admin"
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
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="1,32")
    parser.add_argument("--haproxy", action="store_true")
    parser.add_argument(
        "--gateway-workers", help="GUNICORN_WORKERS of the gateway only (default: as the services)"
    )
    parser.add_argument(
        "--gateway-threads", help="GUNICORN_THREADS of the gateway only (default: as the services)"
    )
    args = parser.parse_args()
    needed = ["wrk", *(["haproxy"] if args.haproxy else [])]
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        print(
            f"missing: {', '.join(missing)} (apt-get install {' '.join(missing)})", file=sys.stderr
        )
        return 2
    run(args)
    return 0


def run(args: argparse.Namespace) -> None:
    with running_stack(
        ["auth", "gateway"],
        settings=RATE_LIMITS_OFF,
        process_settings={"gateway": gateway_settings(args)},
    ) as stack:
        targets = {"direct": stack.url("auth"), "gateway": stack.url("gateway")}
        haproxy: dict[str, subprocess.Popen[bytes]] = {}
        try:
            if args.haproxy:
                haproxy["haproxy"], targets["haproxy"] = start_haproxy(stack)
            token = login(stack)
            connection_counts = [int(c) for c in args.connections.split(",")]
            gateway_pid = stack.processes["gateway"].pid
            report(targets, token, connection_counts, args.duration, gateway_pid)
        finally:
            stop_processes(haproxy)


def gateway_settings(args: argparse.Namespace) -> dict[str, str]:
    """The gateway's own gunicorn worker and thread counts, where given."""
    return {
        name: value
        for name, value in (
            ("GUNICORN_WORKERS", args.gateway_workers),
            ("GUNICORN_THREADS", args.gateway_threads),
        )
        if value
    }


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
        try:
            requests.get(url, timeout=0.2)
            break
        except requests.RequestException:
            time.sleep(0.1)
    return process, url


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
    path = f"/users/{ADMIN}"
    names = list(targets)
    header = " | ".join(f"{name} req/s | {name} p50 | {name} p99" for name in names)
    print(
        f"| connections | {header} | gateway/direct | gateway/haproxy | added p50"
        " | gateway CPU/request |"
    )
    print("|---" * (2 + 3 * len(names) + 3) + "|")
    for connections in connection_counts:
        results: dict[str, Result] = {}
        auth = {"Authorization": f"Bearer {token}"}
        for name, url in targets.items():
            started = cpu_seconds(gateway_pid)
            results[name] = run_wrk(url + path, auth, connections, duration)
            if name == "gateway":
                gateway_cpu = (cpu_seconds(gateway_pid) - started) / results[name].requests
        cells = " | ".join(
            f"{r.requests_per_second:.0f} | {r.p50_ms:.2f} ms | {r.p99_ms:.2f} ms"
            for r in results.values()
        )
        ours, direct = results["gateway"], results["direct"]
        kept = ours.requests_per_second / direct.requests_per_second
        versus_haproxy = (
            f"{ours.requests_per_second / results['haproxy'].requests_per_second:.0%}"
            if "haproxy" in results
            else "-"
        )
        print(
            f"| {connections} | {cells} | {kept:.0%} | {versus_haproxy}"
            f" | {ours.p50_ms - direct.p50_ms:.2f} ms | {gateway_cpu * 1e6:.0f} µs |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
