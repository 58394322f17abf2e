"""gunicorn settings shared by every HTTP process (the services; the gateway's own file
starts from them and replaces the worker class with its event-loop worker).

gthread workers: each worker serves many connections on threads, so one slow client or
slow upstream does not hold the whole process; keep-alive is longer than the gateway's
pool idle time so pooled connections are not cut mid-request. The worker class is
gthread with every client bounded in time (servicekit/gunicorn_worker.py): request heads
are read without a thread, and a client that stalls for `GUNICORN_CLIENT_TIMEOUT`
seconds is disconnected. The gateway passes services only whole requests, but a service
reached directly (from inside the cluster) meets any client.

With `PROMETHEUS_MULTIPROC_DIR` set (the image sets it), the workers write their
metrics to files there and /metrics sums them; the master empties the folder before
the first worker starts and marks each dead worker's gauges.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import multiprocess

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "servicekit.gunicorn_worker.BoundedThreadWorker"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "10"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
accesslog = None  # the apps write one JSON access line per request themselves
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
limit_request_line = 8190
# Every service runs its own gunicorn master: a default control socket path would be shared.
control_socket_disable = True


def on_starting(server: Arbiter) -> None:
    """Start with an empty metrics folder, before any worker writes to it: the files
    of an earlier run (a restarted container keeps its emptyDir or volume) would be
    summed into this run's counters. Created when missing (a fresh tmpfs on /tmp)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        empty_metrics_dir(Path(directory))


def empty_metrics_dir(directory: Path) -> None:
    """Remove prometheus_client's files (`*.db`) only: a folder named by mistake keeps
    everything else."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.glob("*.db"):
        path.unlink(missing_ok=True)


def child_exit(server: Arbiter, worker: Worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
