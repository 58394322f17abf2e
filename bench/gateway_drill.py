"""The slow-client drill as a benchmark: how long /health and an authenticated GET take
while the gateway holds 1,000 idle keep-alive connections, 64 stalled request heads and
64 uploads trickling one byte a second, against the same probes without the drill (the
baseline, measured first in the same run).

The real gateway process (gunicorn, one worker) in front of a recording upstream (a
process of its own, on loopback) and a private redis-server. The drill's connections come
from a child process, spread over 16 client addresses (127.0.2.x); the probes are sent
from this process, one new connection each, from 127.0.0.1. Phases:

- baseline: probes only (after 1 s of warm-up);
- opening: the drill's 1,000 idle connections opening, each making one request;
- held: every drill connection open, stalled heads until the head deadline, trickling
  uploads until the body deadline (answered 408);
- after: probes only again.

Prints p50/p99/max probe latency per phase and probe (and the p99's ratio to the
baseline's), the gateway worker's peak RSS and CPU share before, during and after the
drill, how the drill's connections ended, and the machine's load average (the figures are
only as quiet as the machine); `--markdown FILE` writes the same Markdown to a file.

    .venv/bin/python bench/gateway_drill.py [--baseline 5] [--idle 1000] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.redis_server import running_redis
from devstack.stack import RATE_LIMITS_OFF
from servicekit.testing import TestKeys
from tests.gateway.drill_harness import (
    DrillPlan,
    DrillResult,
    Probe,
    probe_until,
    recording_upstream,
    request_head,
    run_drill,
)
from tests.gateway.gunicorn_harness import ServedGateway, gunicorn_gateway

HEAD_TIMEOUT = 5.0
# A 100,000-byte upload may take 5 s + 100,000 / 10,000 B/s = 15 s.
SETTINGS = {
    **RATE_LIMITS_OFF,
    "GUNICORN_WORKERS": "1",
    "LOG_LEVEL": "warning",
    "GATEWAY_HEAD_TIMEOUT": str(HEAD_TIMEOUT),
    "GATEWAY_BODY_GRACE": "5",
    "GATEWAY_BODY_MIN_RATE": "10000",
    "GATEWAY_IDLE_TIMEOUT": "120",
    "GATEWAY_MAX_IDLE_CONNECTIONS": "4096",
    "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "256",
}
PROBE_BOUND = 5.0
PROBE_INTERVAL = 0.02
TARGET_P99_MS = 50.0


@dataclass(frozen=True)
class Row:
    phase: str
    probe: str
    count: int
    failed: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def drill_in_child(address: tuple[str, int], plan: DrillPlan, authorization: str) -> DrillResult:
    """The drill's connections, without probes (run in a child process)."""
    return asyncio.run(
        run_drill(address, plan, authorization, {}, probe_bound=PROBE_BOUND, probe_interval=1.0)
    )


async def probe_for(
    address: tuple[str, int], probes: dict[str, bytes], seconds: float
) -> list[Probe]:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    return await probe_until(address, probes, stop, bound=PROBE_BOUND, interval=PROBE_INTERVAL)


async def probe_while(
    address: tuple[str, int], probes: dict[str, bytes], done: threading.Event
) -> list[Probe]:
    stop = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            await asyncio.sleep(0.05)
        stop.set()

    watcher = asyncio.ensure_future(watch())
    found = await probe_until(address, probes, stop, bound=PROBE_BOUND, interval=PROBE_INTERVAL)
    await watcher
    return found


def upstream_in_child(jwks: dict[str, Any], upload_target: str, control: Connection) -> None:
    """The recording upstream, in a process of its own: sends its URL, then, when asked,
    (the most requests it handled at once, how many uploads reached it) since the last
    question."""
    with recording_upstream(jwks) as upstream:
        control.send(upstream.url)
        while control.recv() == "figures":
            control.send((upstream.max_in_flight, len(upstream.requests_to(upload_target))))
            upstream.clear()


@contextmanager
def upstream_process(jwks: dict[str, Any], upload_target: str) -> Iterator[tuple[str, Connection]]:
    context = multiprocessing.get_context("spawn")
    control, child_end = context.Pipe()
    process = context.Process(target=upstream_in_child, args=(jwks, upload_target, child_end))
    process.start()
    try:
        yield control.recv(), control
    finally:
        control.send("stop")
        process.join(timeout=10)


class WorkerSampler:
    """The gateway worker's resident memory, sampled every 0.2 s (the peak per phase), and
    the CPU time it used per phase (a figure the machine's other work does not inflate)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peaks: dict[str, int] = {}
        self.cpu_share: dict[str, float] = {}  # CPU seconds per wall second
        self.phase = "baseline"
        self._phase_start = (time.monotonic(), self._cpu())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def start(self) -> None:
        self._thread.start()

    def switch(self, phase: str) -> None:
        self._close_phase()
        self.phase = phase

    def _close_phase(self) -> None:
        wall, cpu = self._phase_start
        now, now_cpu = time.monotonic(), self._cpu()
        self.cpu_share[self.phase] = (now_cpu - cpu) / max(now - wall, 1e-9)
        self._phase_start = (now, now_cpu)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self.process.memory_info().rss
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss)
            self._stop.wait(0.2)

    def stop(self) -> None:
        self._close_phase()
        self._stop.set()
        self._thread.join(timeout=5)


def rows(phase_probes: dict[str, list[Probe]]) -> list[Row]:
    table = []
    for phase, probes in phase_probes.items():
        for name in sorted({p.name for p in probes}):
            mine = [p for p in probes if p.name == name]
            latencies = [p.latency * 1000 for p in mine]
            failed = sum(1 for p in mine if p.status != 200)
            table.append(
                Row(
                    phase,
                    name,
                    len(mine),
                    failed,
                    percentile(latencies, 0.5),
                    percentile(latencies, 0.99),
                    max(latencies),
                )
            )
    return table


def split_drill_probes(probes: list[Probe], drill: DrillResult) -> dict[str, list[Probe]]:
    return {
        "opening": [p for p in probes if drill.started <= p.started < drill.idle_held],
        "held": [p for p in probes if p.started >= drill.idle_held],
    }


@dataclass(frozen=True)
class Run:
    table: list[Row]
    rss: dict[str, int]  # peak RSS per sampler phase: baseline, drill, after
    cpu: dict[str, float]  # the worker's CPU seconds per second, per sampler phase
    drill: DrillResult
    upstream_peak: int  # requests the upstream was handling at once, at most
    uploads_seen: int  # trickled uploads that reached the upstream (none should)
    seconds: float
    load: tuple[float, float]  # the machine's 1-minute load average, before and after


def markdown(run: Run, plan: DrillPlan) -> str:
    table, rss, drill = run.table, run.rss, run.drill
    baseline = {r.probe: r for r in table if r.phase == "baseline"}
    lines = [
        f"Gateway under gunicorn, 1 worker; head deadline {HEAD_TIMEOUT:.0f} s, body deadline "
        "5 s + 10,000 B/s (15 s for the 100,000-byte uploads); probes on a new connection "
        f"each, one every {PROBE_INTERVAL * 1000:.0f} ms after the previous one's answer.",
        "",
        "| phase | probe | probes | failed | p50 ms | p99 ms | max ms | p99 / baseline |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table:
        ratio = r.p99_ms / baseline[r.probe].p99_ms if r.probe in baseline else float("nan")
        lines.append(
            f"| {r.phase} | {r.probe} | {r.count} | {r.failed} | {r.p50_ms:.1f} | "
            f"{r.p99_ms:.1f} | {r.max_ms:.1f} | {ratio:.1f}x |"
        )
    met = all(r.p99_ms <= TARGET_P99_MS and r.failed == 0 for r in table)
    trickled = [e for e in drill.tricklers if e.after is not None]
    stalled = [e.after for e in drill.stalled if e.after is not None]
    statuses = sorted({str(e.status) for e in drill.tricklers})
    lines += [
        "",
        "| gateway worker | peak RSS MiB | CPU (share of one core) |",
        "|---|---:|---:|",
        *(
            f"| {phase} | {rss[phase] / 2**20:.1f} | {run.cpu.get(phase, 0) * 100:.0f} % |"
            for phase in rss
        ),
        "",
        f"- Drill: {plan.idle} idle keep-alive connections ({drill.idle_open_at_end} still held "
        f"at its end), {plan.stalled_heads} stalled heads (closed after "
        f"{min(stalled):.1f}-{max(stalled):.1f} s; head deadline {HEAD_TIMEOUT:.0f} s), "
        f"{plan.tricklers} uploads trickling 1 byte/s ({len(trickled)} ended, status "
        f"{', '.join(statuses)}, after {min(e.after or 0 for e in trickled):.1f}-"
        f"{max(e.after or 0 for e in trickled):.1f} s), over {len(plan.addresses)} client "
        f"addresses; {run.seconds:.1f} s in all. The upstream handled at most "
        f"{run.upstream_peak} requests at once; trickled uploads that reached it: "
        f"{run.uploads_seen}.",
        f"- Machine: {os.cpu_count()} CPUs, 1-minute load average {run.load[0]:.1f} before "
        f"the run and {run.load[1]:.1f} after it (other work included).",
        f"- Target (p99 of both probes within {TARGET_P99_MS:.0f} ms, no failure, in every "
        f"phase): {'met' if met else 'not met'}.",
    ]
    return "\n".join(lines) + "\n"


def run(baseline_seconds: float, plan: DrillPlan) -> Run:
    keys = TestKeys()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-drill-"))
    authorization = f"Bearer {keys.token(sub='drill-prober')}"
    probes = {
        "/health": request_head("GET", "/health", [("Connection", "close")]),
        "authenticated GET": request_head(
            "GET", "/sample/gets", [("Authorization", authorization), ("Connection", "close")]
        ),
    }
    with (
        running_redis(workdir / "redis") as redis_url,
        upstream_process(keys.jwks, plan.upload_target) as (upstream_url, upstream),
        gunicorn_gateway(upstream_url, redis_url, workdir / "gateway.log", SETTINGS) as served,
    ):
        return measure(served, upstream, plan, probes, authorization, baseline_seconds)


def measure(
    served: ServedGateway,
    upstream: Connection,
    plan: DrillPlan,
    probes: dict[str, bytes],
    authorization: str,
    baseline_seconds: float,
) -> Run:
    address = served.address
    load_before = os.getloadavg()[0]
    sampler = WorkerSampler(served.worker_pids[0])
    sampler.start()
    started = time.monotonic()
    asyncio.run(probe_for(address, probes, 1.0))  # warm: the keys fetched, pools opened
    phase_probes = {"baseline": asyncio.run(probe_for(address, probes, baseline_seconds))}
    sampler.switch("drill")
    upstream.send("figures")
    upstream.recv()  # from now on
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        done = threading.Event()
        future = pool.submit(drill_in_child, address, plan, authorization)
        future.add_done_callback(lambda _: done.set())
        during = asyncio.run(probe_while(address, probes, done))
        drill = future.result()
    sampler.switch("after")
    upstream.send("figures")
    upstream_peak, uploads_seen = upstream.recv()
    phase_probes.update(split_drill_probes(during, drill))
    phase_probes["after"] = asyncio.run(probe_for(address, probes, baseline_seconds))
    sampler.stop()
    return Run(
        rows(phase_probes),
        dict(sampler.peaks),
        dict(sampler.cpu_share),
        drill,
        upstream_peak,
        uploads_seen,
        time.monotonic() - started,
        (load_before, os.getloadavg()[0]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds of probes alone")
    parser.add_argument("--idle", type=int, default=1000, help="idle keep-alive connections")
    parser.add_argument("--markdown", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    plan = replace(DrillPlan(), idle=args.idle, patience=40.0)
    report = markdown(run(args.baseline, plan), plan)
    print(report)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report)


if __name__ == "__main__":
    main()
