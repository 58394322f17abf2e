"""The gateway's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram

from servicekit.observability import metrics_payload

REQUESTS = Counter(
    "gateway_requests_total",
    "Requests answered by the gateway",
    ["method", "route", "upstream", "status"],
)
LATENCY = Histogram(
    "gateway_request_duration_seconds",
    "Time from request to the end of the response",
    ["route", "upstream"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPSTREAM_ERRORS = Counter(
    "gateway_upstream_errors_total", "Failed upstream calls", ["upstream", "kind"]
)

RATE_LIMITED = Counter("gateway_rate_limited_total", "Requests refused with 429", ["route"])
CIRCUIT_STATE = Gauge(
    "gateway_circuit_state",
    "Circuit breaker per upstream: 0 closed, 1 open, 2 half-open",
    ["upstream"],
    multiprocess_mode="max",
)


def observe(method: str, route: str, upstream: str | None, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, upstream or "-", str(status)).inc()
    LATENCY.labels(route, upstream or "-").observe(seconds)


def upstream_error(upstream: str, kind: str) -> None:
    UPSTREAM_ERRORS.labels(upstream, kind).inc()


def rate_limited(route: str) -> None:
    RATE_LIMITED.labels(route).inc()


def circuit_state(upstream: str, state: int) -> None:
    CIRCUIT_STATE.labels(upstream).set(int(state))


def render() -> tuple[int, bytes, list[tuple[str, str]]]:
    payload = metrics_payload()
    return (
        200,
        payload,
        [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(payload)))],
    )
