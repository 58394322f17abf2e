"""Running wrk (Debian's `wrk`) and reading its `--latency` report, for the benchmarks."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Result:
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    failed: int = 0  # answers other than 2xx or 3xx (only when not strict)
    socket_errors: int = 0  # connect, read, write errors and timeouts, as wrk counts them
    socket_error_kinds: str = ""  # wrk's own words: "connect 0, read 3, write 0, timeout 12"


def parse_latency(text: str) -> float:
    """wrk's "812.00us", "2.46ms" or "1.02s" in milliseconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def run_wrk(
    url: str, headers: dict[str, str], connections: int, duration: int, *, strict: bool = True
) -> Result:
    """One wrk run. Strict: every answer must be a 2xx or 3xx; otherwise the failed answers
    and socket errors are counted in the result."""
    header_options = [
        option for name, value in headers.items() for option in ("-H", f"{name}: {value}")
    ]
    output = subprocess.run(
        ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{duration}s", "--latency",
         *header_options, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    failed_match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    failed = int(failed_match.group(1)) if failed_match else 0
    if failed and strict:
        raise RuntimeError(f"{url}: {failed} failed responses")
    count = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = parse_latency(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = parse_latency(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: (.*)", output)
    kinds = errors.group(1).strip() if errors else ""
    error_count = sum(int(n) for n in re.findall(r"\d+", kinds))
    return Result(count, rps, p50, p99, failed, error_count, kinds)
