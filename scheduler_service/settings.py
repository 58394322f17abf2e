"""scheduler_service's settings (servicekit.settings loads and checks them at start).

The API and the worker read the same variables: the app loads them in `create_app`, the
worker process in `scheduler_service.jobs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from scheduler_service.outbound import (
    AllowedTarget,
    TargetPolicy,
    UnsafeTarget,
    allowed_target,
    parse_destination,
)
from servicekit.config import REPO_ROOT
from servicekit.settings import setting

DEFAULT_URL = "https://ifconfig.co"
# The job of a call waits at most the lead and the call itself; the rest is slack.
JOB_TIMEOUT_SLACK = 60


def callable_url(value: str) -> str | None:
    """Why `value` cannot be a call's target URL, or None (its address is not checked)."""
    try:
        parse_destination(value)
    except UnsafeTarget as exc:
        return f"must be a URL the scheduler can call: {exc}"
    return None


METRICS_BIND = "SCHEDULER_WORKER_METRICS_BIND"


def parse_bind(value: str) -> tuple[str, int]:
    """`host:port` (`[v6]:port` for IPv6) -> (host, port); a clear ValueError otherwise."""
    host, separator, port = value.strip().rpartition(":")
    if not separator or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{METRICS_BIND} must be host:port, e.g. 127.0.0.1:9108; got {value!r}")
    host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"
    return host, int(port)


def metrics_bind_problem(value: str | None) -> str | None:
    """Why `value` cannot be the worker's metrics address, or None."""
    if not value:
        return None
    try:
        parse_bind(value)
    except ValueError:
        return f"must be host:port (IPv6 in brackets), e.g. 127.0.0.1:9108; got {value!r}"
    return None


def positive(value: float) -> str | None:
    return None if value > 0 else f"must be more than 0, got {value!r}"


def allow_list_problem(entries: tuple[str, ...]) -> str | None:
    """Why an entry of the allow-list is not a `host` or `host:port`, or None."""
    for entry in entries:
        try:
            allowed_target(entry)
        except ValueError as exc:
            return f"each entry must be a host or host:port: {exc}"
    return None


@dataclass(frozen=True)
class SchedulerSettings:
    default_url: str = setting("SCHEDULER_DEFAULT_URL", DEFAULT_URL, check=callable_url)
    # `host:port` entries exempt from the address checks (SSRF guard), comma-separated; a
    # bare host is exempt on its scheme's default port only.
    allowed_hosts: tuple[str, ...] = setting(
        "SCHEDULER_ALLOWED_HOSTS", (), check=allow_list_problem
    )
    call_log: Path = setting("SCHEDULER_CALL_LOG", lambda: REPO_ROOT / "logs" / "api_calls.log")
    max_timestamps: int = setting("SCHEDULER_MAX_TIMESTAMPS", 10_000, minimum=1)
    # Unfinished (Pending or Running) calls one user may hold; staff have their own cap
    # (0: none).
    max_pending: int = setting("SCHEDULER_MAX_PENDING", 10_000, minimum=1)
    staff_max_pending: int = setting("SCHEDULER_STAFF_MAX_PENDING", 0, minimum=0)
    max_horizon: float = setting("SCHEDULER_MAX_HORIZON", 365 * 24 * 3600.0, minimum=1)
    max_attempts: int = setting("SCHEDULER_MAX_ATTEMPTS", 5, minimum=1)
    retry_base: float = setting("SCHEDULER_RETRY_BASE", 2.0, minimum=0)
    retry_max: float = setting("SCHEDULER_RETRY_MAX", 300.0, minimum=0)
    retry_after_max: float = setting("SCHEDULER_RETRY_AFTER_MAX", 3600.0, minimum=0)
    connect_timeout: float = setting("SCHEDULER_CONNECT_TIMEOUT", 5.0, check=positive)
    total_timeout: float = setting("SCHEDULER_TIMEOUT", 30.0, check=positive)
    max_response_bytes: int = setting("SCHEDULER_MAX_RESPONSE_BYTES", 1024 * 1024, minimum=0)
    handoff_lead: float = setting("SCHEDULER_HANDOFF_LEAD", 10.0, minimum=0)
    reconcile_interval: float = setting("SCHEDULER_RECONCILE_INTERVAL", 15.0, check=positive)
    reconcile_window: float = setting("SCHEDULER_RECONCILE_WINDOW", 600.0, minimum=0)
    lease_grace: float = setting("SCHEDULER_LEASE_GRACE", 30.0, minimum=0)
    worker_threads: int = setting("SCHEDULER_WORKER_THREADS", 32, minimum=1)
    # Calls one worker process sends at once to one destination (scheme, host, port).
    host_concurrency: int = setting("SCHEDULER_HOST_CONCURRENCY", 8, minimum=1)
    # host:port of the worker's /metrics listener; none when unset.
    worker_metrics_bind: str | None = setting(METRICS_BIND, None, check=metrics_bind_problem)

    @cached_property
    def allowed_targets(self) -> frozenset[AllowedTarget]:
        return frozenset(map(allowed_target, self.allowed_hosts))

    @cached_property
    def target_policy(self) -> TargetPolicy:
        return TargetPolicy(
            allowed=self.allowed_targets,
            connect_timeout=self.connect_timeout,
            total_timeout=self.total_timeout,
            max_response_bytes=self.max_response_bytes,
        )

    def pending_cap(self, is_staff: bool) -> int | None:
        """How many unfinished calls a caller may hold; None: no cap."""
        if not is_staff:
            return self.max_pending
        return self.staff_max_pending or None

    @property
    def lease_seconds(self) -> float:
        """How long a Running call may stay with one worker before it counts as lost."""
        return self.total_timeout + self.lease_grace

    @property
    def job_timeout(self) -> int:
        """An RQ job may wait for its instant and make the call itself (stock workers)."""
        return int(self.handoff_lead + self.total_timeout + JOB_TIMEOUT_SLACK)
