"""The gateway's Prometheus metrics."""

from __future__ import annotations

from typing import Any

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


# Labelled children by label values: looking them up costs more than using them.
_per_request: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}
_reported_circuit: dict[str, int] = {}


def observe(method: str, route: str, upstream: str | None, status: int, seconds: float) -> None:
    key = (method, route, upstream or "-", status)
    children = _per_request.get(key)
    if children is None:
        children = (
            REQUESTS.labels(method, route, upstream or "-", str(status)),
            LATENCY.labels(route, upstream or "-"),
        )
        _per_request[key] = children
    requests, latency = children
    requests.inc()
    latency.observe(seconds)


def upstream_error(upstream: str, kind: str) -> None:
    UPSTREAM_ERRORS.labels(upstream, kind).inc()


def rate_limited(route: str) -> None:
    RATE_LIMITED.labels(route).inc()


def circuit_state(upstream: str, state: int) -> None:
    """Report a breaker's state; a write only when it changed (every request reports)."""
    if _reported_circuit.get(upstream) == int(state):
        return
    _reported_circuit[upstream] = int(state)
    CIRCUIT_STATE.labels(upstream).set(int(state))


def render() -> tuple[int, bytes, list[tuple[str, str]]]:
    payload = metrics_payload()
    return (
        200,
        payload,
        [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(payload)))],
    )
