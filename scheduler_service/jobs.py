"""RQ jobs of the scheduler. The worker runs them: `rq worker --with-scheduler scheduler`
(with `--worker-class scheduler_service.worker.CallWorker` for on-time firing).

A worker process builds the scheduler app once (for its database) and loads the
scheduler's settings once, and keeps both, as microblog's `app/tasks.py` keeps its app.
Job payloads are plain JSON: a call id and its instant.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Protocol

from flask import Flask
from rq import get_current_job

from scheduler_service.queueing import QUEUE_NAME
from scheduler_service.runner import CallRunner
from scheduler_service.settings import SchedulerSettings
from servicekit.app import process_app
from servicekit.settings import load_settings

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["QUEUE_NAME", "call_runner", "dispatch_call", "install_dispatcher", "worker_app"]


class Holder(Protocol):
    def hold(self, call_id: int, due_us: int) -> None: ...


_settings: SchedulerSettings | None = None
_dispatcher: Holder | None = None
_runner: CallRunner | None = None
_lock = threading.Lock()


def _build_app() -> Flask:
    from scheduler_service import create_app

    return create_app()


def worker_app() -> Flask:
    """This process's scheduler app, built on first use."""
    return process_app(_build_app)


def worker_settings() -> SchedulerSettings:
    """This process's settings: the environment's, checked as the app's are."""
    global _settings
    with _lock:
        if _settings is None:
            _settings = load_settings(SchedulerSettings)
        return _settings


def call_runner(connection: Redis, worker: str) -> CallRunner:
    """A runner for this worker process, on its app's database."""
    return CallRunner(worker_app(), worker_settings(), connection, worker)


def install_dispatcher(dispatcher: Holder | None) -> None:
    """Set by `CallWorker` at start: jobs then hand their calls to it."""
    global _dispatcher
    _dispatcher = dispatcher


def dispatch_call(call_id: int, due_us: int) -> None:
    """The job of one call: hand it to the dispatcher, or (in a plain worker) run it here."""
    dispatcher = _dispatcher
    if dispatcher is not None:
        dispatcher.hold(int(call_id), int(due_us))
        return
    _run_here(int(call_id), int(due_us))


def _run_here(call_id: int, due_us: int) -> None:
    """Wait for the instant in this job, then claim, fire and record the call."""
    job = get_current_job()
    assert job is not None, "dispatch_call runs inside an RQ job"
    runner = _process_runner(job.connection, job.worker_name or f"pid-{os.getpid()}")
    wait = runner.clock.seconds_until(due_us / 1_000_000)
    if wait > 0:
        time.sleep(wait)
    claimed = runner.claim([call_id])
    runner.record([(call, runner.fire(call)) for call in claimed])


def _process_runner(connection: Redis, worker: str) -> CallRunner:
    global _runner
    runner = _runner
    if runner is None or runner.worker != worker:
        runner = _runner = call_runner(connection, worker)
    return runner
