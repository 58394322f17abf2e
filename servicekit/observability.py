"""Request ids, the JSON access log, Prometheus metrics, and /health, /ready, /metrics."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from flask import Flask, Response, g, has_request_context, jsonify, request
from flask_jwt_extended.utils import get_jwt
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

access_log = logging.getLogger("flotilla.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra={...}` fields become keys."""

    _STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in self._STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # orjson: one line per request on every process's hot path.
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)  # alongside, not instead of, handlers the host installed
    root.setLevel(level.upper())


def request_id_from(header_value: str | None) -> str:
    """The client's request id when it is safe to log and echo, else a new one."""
    if header_value and _SAFE_REQUEST_ID.match(header_value):
        return header_value
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


def _route_template() -> str:
    return request.url_rule.rule if request.url_rule is not None else "<unmatched>"


def _caller() -> str | None:
    """The verified caller's subject, if a view looked at the token."""
    try:
        return get_jwt().get("sub")
    except RuntimeError:
        return None


def init_request_tracking(app: Flask, service: str) -> None:
    @app.before_request
    def start_request() -> None:
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        g.started = time.perf_counter()

    @app.after_request
    def finish_request(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id") or request_id_from(None)
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = _route_template()
        REQUESTS.labels(service, request.method, route, str(response.status_code)).inc()
        LATENCY.labels(service, request.method, route).observe(elapsed)
        access_log.info(
            "request",
            extra={
                "service": service,
                "request_id": response.headers[REQUEST_ID_HEADER],
                "method": request.method,
                "route": route,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
                "remote": request.remote_addr,
                "user": _caller(),
            },
        )
        return response


def metrics_payload() -> bytes:
    """Prometheus text format; aggregates all gunicorn workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


Check = Callable[[], object]


def init_health(app: Flask, service: str, checks: dict[str, Check]) -> None:
    """/health: the process answers. /ready: every dependency answers too."""

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok", service=service)

    @app.get("/ready")
    def ready() -> tuple[Response, int]:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # any failure of a dependency means "not ready"
                results[name] = f"error: {type(exc).__name__}"
        healthy = all(v == "ok" for v in results.values())
        status = "ready" if healthy else "unavailable"
        return jsonify(status=status, service=service, checks=results), 200 if healthy else 503

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(metrics_payload(), mimetype=CONTENT_TYPE_LATEST)
