"""The image API through the gateway: photo uploads per second, signed-URL reads (200 and
304 revalidation), and one 40 MB upload with the media service's peak memory.

Starts auth_service, media_service and the gateway under gunicorn (2 workers x 8 threads,
the default) on free loopback ports, with a private redis-server and SQLite in a temporary
folder. Each upload client is a user of its own (`POST /register/`) sending a 1600x1200
JPEG photo (about 400 KB) with `POST /images/` and `Authorization: Token`, one after
another for `--duration` seconds; latency is per request, as the client sees it. Reads
of one signed URL run under `wrk` (Debian package `wrk`), through the gateway and directly
against media_service, without a token, as an `<img src>` fetches it; `If-None-Match`
with the URL's ETag gives the 304 case. The large upload is a PNG of random noise
(3700x3700, uncompressed, 41 MB), its form body built before the clock starts. Memory
is each media and gateway gunicorn worker's peak resident size (VmHWM in
/proc/<pid>/status), restarted from the current size just before the large upload.

    .venv/bin/python bench/media.py [--duration 15] [--clients 1,4] [--connections 1,16]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import psutil
import requests
from PIL import Image, ImageChops
from urllib3 import encode_multipart_formdata

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.wrk_runner import Result, run_wrk
from devstack.stack import RATE_LIMITS_OFF, Stack, running_stack

MIB = 1024 * 1024
PROCESSES = ["auth", "media", "gateway"]
PASSWORD = "bench-password-123"
LARGE_SIDE = 3700
SETTINGS = {
    "MEDIA_MAX_BYTES": str(50 * MIB),
    "MEDIA_QUOTA_BYTES": str(10 * 1024 * MIB),
    "MEDIA_QUOTA_IMAGES": "1000000",
    "LOG_LEVEL": "WARNING",
    # Every client is one address: rate limits would measure themselves.
    **RATE_LIMITS_OFF,
}


def photo_jpeg(width: int = 1600, height: int = 1200, grain: int = 14) -> bytes:
    """A photo-like JPEG: smooth shapes under sensor-like noise (random detail is what makes
    a camera's JPEG 300-500 KB at this size; a flat colour would be a few KB)."""
    noise = Image.effect_noise((width, height), grain)
    shapes = (
        Image.effect_mandelbrot((width, height), (-2.0, -1.1, 0.8, 1.1), 60),
        Image.linear_gradient("L").resize((width, height)),
        Image.radial_gradient("L").resize((width, height)),
    )
    channels = [ImageChops.add(shape, noise, 2, -64) for shape in shapes]
    out = io.BytesIO()
    Image.merge("RGB", channels).save(out, "JPEG", quality=85)
    return out.getvalue()


def noise_png(path: Path, side: int) -> int:
    picture = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    picture.save(path, "PNG", compress_level=0)
    return path.stat().st_size


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


# The clients


def register(gateway: str) -> str:
    response = requests.post(
        f"{gateway}/register/",
        json={"username": f"bench_{uuid.uuid4().hex[:10]}", "password": PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["token"])


def upload(session: requests.Session, gateway: str, picture: Any, name: str) -> dict[str, Any]:
    response = session.post(f"{gateway}/images/", files={"image": (name, picture)}, timeout=300)
    if response.status_code != 201:
        raise SystemExit(f"upload failed: {response.status_code} {response.text[:500]}")
    return dict(response.json())


# Photo uploads


def measure_uploads(gateway: str, photo: bytes, clients: int, duration: float) -> dict[str, Any]:
    """`clients` users upload the photo one after another each, for `duration` seconds."""
    tokens = [register(gateway) for _ in range(clients)]
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + duration

    def client(token: str) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        upload(session, gateway, photo, "warm-up.jpg")
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            upload(session, gateway, photo, "photo.jpg")
            with lock:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client, tokens))
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "uploads": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50": percentile(latencies, 0.50) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
    }


# Signed-URL reads


def measure_reads(
    stack: Stack, url: str, connection_counts: list[int], duration: int
) -> list[tuple[str, int, Result]]:
    etag = requests.get(url, timeout=30).headers["ETag"]
    path = url[url.index("/media/") :]
    cases = {
        "gateway 200": (stack.url("gateway") + path, {}),
        "gateway 304": (stack.url("gateway") + path, {"If-None-Match": etag}),
        "direct 200": (stack.url("media") + path, {}),
        "direct 304": (stack.url("media") + path, {"If-None-Match": etag}),
    }
    return [
        (case, connections, run_wrk(target, headers, connections, duration))
        for connections in connection_counts
        for case, (target, headers) in cases.items()
    ]


# The 40 MB upload


def worker_pids(master: subprocess.Popen[bytes]) -> list[int]:
    return [child.pid for child in psutil.Process(master.pid).children()]


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def restart_peaks(pids: list[int]) -> dict[int, int]:
    """Restart each VmHWM from the current size; the sizes (KiB) it restarts from."""
    for pid in pids:
        with suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    return {pid: status_kib(pid, "VmRSS") for pid in pids}


def measure_large(
    gateway: str, processes: dict[str, subprocess.Popen[bytes]], scratch: Path
) -> dict[str, Any]:
    source = scratch / "noise.png"
    size = noise_png(source, LARGE_SIDE)
    session = requests.Session()
    session.headers["Authorization"] = f"Token {register(gateway)}"
    media, proxy = worker_pids(processes["media"]), worker_pids(processes["gateway"])
    media_start = restart_peaks(media)
    proxy_start = restart_peaks(proxy)
    form, content_type = encode_multipart_formdata(
        {"image": ("noise.png", source.read_bytes(), "image/png")}
    )
    source.unlink()
    started = time.perf_counter()
    response = session.post(
        f"{gateway}/images/", data=form, headers={"Content-Type": content_type}, timeout=300
    )
    seconds = time.perf_counter() - started
    if response.status_code != 201:
        raise SystemExit(f"upload failed: {response.status_code} {response.text[:500]}")
    body = response.json()
    media_peak = {pid: status_kib(pid, "VmHWM") for pid in media}
    grown = max(media, key=lambda pid: media_peak[pid] - media_start[pid])
    proxy_growth = max(status_kib(pid, "VmHWM") - proxy_start[pid] for pid in proxy)
    return {
        "bytes": size,
        "seconds": seconds,
        "stored": body["size"],
        "media_start": media_start[grown] / 1024,
        "media_peak": media_peak[grown] / 1024,
        "gateway_growth": proxy_growth / 1024,
    }


# Report


def report(
    photo: bytes,
    stored: int,
    uploads: list[dict[str, Any]],
    reads: list[tuple[str, int, Result]],
    large: dict[str, Any],
) -> None:
    sizes = f"{len(photo) / 1000:.0f} KB; stored (re-encoded) {stored / 1000:.0f} KB"
    print(f"Photo: 1600x1200 JPEG, {sizes}\n")
    print("| clients | uploads | uploads/s | p50 | p99 |")
    print("|---|---|---|---|---|")
    for row in uploads:
        print(
            f"| {row['clients']} | {row['uploads']} | {row['per_second']:.1f} "
            f"| {row['p50']:.0f} ms | {row['p99']:.0f} ms |"
        )
    print("\n| signed-URL read | connections | req/s | p50 | p99 |")
    print("|---|---|---|---|---|")
    for case, connections, result in reads:
        print(
            f"| {case} | {connections} | {result.requests_per_second:.0f} "
            f"| {result.p50_ms:.2f} ms | {result.p99_ms:.2f} ms |"
        )
    growth = large["media_peak"] - large["media_start"]
    print("\n| 40 MB upload | seconds | MB/s | media worker VmHWM | growth | gateway growth |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {large['bytes'] / 1e6:.1f} MB PNG, {LARGE_SIDE}x{LARGE_SIDE} "
        f"| {large['seconds']:.2f} | {large['bytes'] / 1e6 / large['seconds']:.1f} "
        f"| {large['media_start']:.0f} -> {large['media_peak']:.0f} MiB | +{growth:.0f} MiB "
        f"| +{large['gateway_growth']:.1f} MiB |"
    )
    print(f"(decoded pixels: {LARGE_SIDE * LARGE_SIDE * 4 / MIB:.0f} MiB)")


def run(args: argparse.Namespace) -> None:
    with running_stack(PROCESSES, settings=SETTINGS) as stack:
        gateway = stack.url("gateway")
        photo = photo_jpeg()
        uploads = [
            measure_uploads(gateway, photo, clients, args.duration)
            for clients in [int(count) for count in args.clients.split(",")]
        ]
        session = requests.Session()
        session.headers["Authorization"] = f"Token {register(gateway)}"
        read = upload(session, gateway, photo, "read.jpg")
        connections = [int(count) for count in args.connections.split(",")]
        reads = measure_reads(stack, read["url"], connections, args.read_duration)
        large = measure_large(gateway, stack.processes, stack.var)
        report(photo, read["size"], uploads, reads, large)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=15, help="seconds per upload run")
    parser.add_argument("--clients", default="1,4", help="concurrent upload clients")
    parser.add_argument("--connections", default="1,16", help="wrk connections for reads")
    parser.add_argument("--read-duration", type=int, default=10, help="seconds per wrk run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("missing: wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
