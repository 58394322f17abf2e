"""The scheduler's settings, read once from an app's config into one typed value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app

from scheduler_service.outbound import TargetPolicy

EXTENSION = "scheduler.options"


def parse_hosts(value: str | None) -> frozenset[str]:
    """`"127.0.0.1, localhost,[::1]"` -> {"127.0.0.1", "localhost", "::1"}."""
    hosts = (item.strip().lower().strip("[]").rstrip(".") for item in (value or "").split(","))
    return frozenset(host for host in hosts if host)


@dataclass(frozen=True)
class Options:
    default_url: str
    allowed_hosts: frozenset[str]
    call_log: str
    max_timestamps: int
    max_horizon: float
    max_attempts: int
    retry_base: float
    retry_max: float
    retry_after_max: float
    connect_timeout: float
    total_timeout: float
    max_response_bytes: int
    handoff_lead: float
    reconcile_interval: float
    reconcile_window: float
    lease_grace: float
    worker_threads: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Options:
        return cls(
            default_url=str(config["SCHEDULER_DEFAULT_URL"]),
            allowed_hosts=parse_hosts(config["SCHEDULER_ALLOWED_HOSTS"]),
            call_log=str(config["SCHEDULER_CALL_LOG"]),
            max_timestamps=int(config["SCHEDULER_MAX_TIMESTAMPS"]),
            max_horizon=float(config["SCHEDULER_MAX_HORIZON"]),
            max_attempts=max(1, int(config["SCHEDULER_MAX_ATTEMPTS"])),
            retry_base=float(config["SCHEDULER_RETRY_BASE"]),
            retry_max=float(config["SCHEDULER_RETRY_MAX"]),
            retry_after_max=float(config["SCHEDULER_RETRY_AFTER_MAX"]),
            connect_timeout=float(config["SCHEDULER_CONNECT_TIMEOUT"]),
            total_timeout=float(config["SCHEDULER_TIMEOUT"]),
            max_response_bytes=int(config["SCHEDULER_MAX_RESPONSE_BYTES"]),
            handoff_lead=float(config["SCHEDULER_HANDOFF_LEAD"]),
            reconcile_interval=float(config["SCHEDULER_RECONCILE_INTERVAL"]),
            reconcile_window=float(config["SCHEDULER_RECONCILE_WINDOW"]),
            lease_grace=float(config["SCHEDULER_LEASE_GRACE"]),
            worker_threads=max(1, int(config["SCHEDULER_WORKER_THREADS"])),
        )

    @property
    def target_policy(self) -> TargetPolicy:
        return TargetPolicy(
            allowed_hosts=self.allowed_hosts,
            connect_timeout=self.connect_timeout,
            total_timeout=self.total_timeout,
            max_response_bytes=self.max_response_bytes,
        )

    @property
    def lease_seconds(self) -> float:
        """How long a Running call may stay with one worker before it counts as lost."""
        return self.total_timeout + self.lease_grace


def current_options() -> Options:
    """The current app's scheduler settings (read once per app)."""
    options = current_app.extensions.get(EXTENSION)
    if options is None:
        options = Options.from_config(current_app.config)
        current_app.extensions[EXTENSION] = options
    return options
