"""The suite's processes on one machine: their commands and environment, started and stopped.

`running_stack` starts all of the suite, or part of it, on free loopback ports with a
database folder of its own: the end-to-end tests and the benchmarks run on it. `make run`
(`devstack.launcher`) runs the same commands on the suite's fixed ports under honcho.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from rq import Worker

from devstack.redis_server import free_port, running_redis
from servicekit.config import GATEWAY_METRICS_PORT, REPO_ROOT, SERVICE_PORTS, UPSTREAMS
from servicekit.redis_connection import redis_from_url

PACKAGES = {name: f"{name}_service" for name in UPSTREAMS}
WORKER = "worker"
# Publishes auth_service's user lifecycle events left in its outbox (see auth_service/relay.py).
RELAY = "relay"
# events_service's consumer of the user lifecycle stream (see events_service/lifecycle.py).
EVENTS_USERS = "events_users"
# tickets_service's consumer of the user lifecycle stream (see tickets_service/lifecycle.py).
TICKETS_USERS = "tickets_users"
# datapoints_service's users copy: backfilled when empty, then fed by the lifecycle stream
# (see datapoints_service/cli.py).
DATAPOINTS_USERS = "datapoints_users"
# Sends tickets_service's mail to openers (see tickets_service/notifications.py).
TICKETS_MAIL = "tickets_mail"
TICKETS_MAIL_QUEUE = "tickets"
# Processes datapoints_service's uploaded documents (see datapoints_service/documents/jobs.py).
DATAPOINTS_WORKER = "datapoints_worker"
DATAPOINTS_WORKER_QUEUE = "datapoints"
HTTP_PROCESSES = (*PACKAGES, "gateway")
ALL_PROCESSES = (
    *HTTP_PROCESSES,
    WORKER,
    RELAY,
    EVENTS_USERS,
    TICKETS_USERS,
    DATAPOINTS_USERS,
    TICKETS_MAIL,
    DATAPOINTS_WORKER,
)
# The processes without a port, and the service whose database each uses.
PORTLESS_DATABASES = {
    WORKER: "scheduler",
    RELAY: "auth",
    EVENTS_USERS: "events",
    TICKETS_USERS: "tickets",
    DATAPOINTS_USERS: "datapoints",
    TICKETS_MAIL: "tickets",
    DATAPOINTS_WORKER: "datapoints",
}
# The processes without a port that are not RQ workers: ready while they run.
CONSUMERS = (RELAY, EVENTS_USERS, TICKETS_USERS, DATAPOINTS_USERS)
# The RQ workers: ready once registered with RQ.
RQ_WORKERS = (WORKER, TICKETS_MAIL, DATAPOINTS_WORKER)
WORKER_QUEUE = "scheduler"
# The RQ workers' connection: REDIS_URL from their environment, plain or Sentinel.
RQ_SETTINGS = "servicekit.rq_settings"
# Fires calls at their exact instant and reconciles with the database (see its docstring).
WORKER_CLASS = "scheduler_service.worker.CallWorker"
# The dev stack's scheduled calls may reach one local port, for a hook server of the
# developer's (production allows none by default); never the suite's ports or Redis.
DEV_CALL_TARGET_PORT = 9000
DEV_ALLOWED_CALL_HOSTS = f"127.0.0.1:{DEV_CALL_TARGET_PORT},localhost:{DEV_CALL_TARGET_PORT}"
# For load generators and tests that are one client: limits would measure themselves.
RATE_LIMITS_OFF = dict.fromkeys(
    (
        "GATEWAY_RATE_LIMIT",
        "GATEWAY_USER_RATE_LIMIT",
        "GATEWAY_LOGIN_RATE_LIMIT",
        "GATEWAY_LOGIN_USER_RATE_LIMIT",
    ),
    "off",
)
HOST = "127.0.0.1"
SECRET_SETTINGS = ("SERVICE_SECRET", "ADMIN_PASSWORD", "MEDIA_URL_SECRET")
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

Processes = dict[str, subprocess.Popen[bytes]]
FlaskCommand = tuple[subprocess.Popen[bytes], Path]


@dataclass
class Stack:
    """Ports, paths and environment of one suite on this machine."""

    var: Path
    ports: Mapping[str, int] = field(default_factory=lambda: dict(SERVICE_PORTS))
    metrics_port: int = GATEWAY_METRICS_PORT
    environment: dict[str, str] = field(default_factory=dict)
    # Settings of one process only, by process name (e.g. the gateway's worker count).
    process_settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.ports[name]}"

    def env(self) -> dict[str, str]:
        """The environment every process gets: var folder, service URLs, settings."""
        env = {**os.environ, "FLOTILLA_VAR_DIR": str(self.var), **self.environment}
        for name in PACKAGES:
            env.setdefault(f"{name.upper()}_SERVICE_URL", self.url(name))
        env.setdefault("PYTHONUNBUFFERED", "1")
        # Image URLs name the gateway, whatever Host a client sends.
        env.setdefault("MEDIA_PUBLIC_URL", self.url("gateway"))
        env.setdefault("SCHEDULER_ALLOWED_HOSTS", DEV_ALLOWED_CALL_HOSTS)
        return env

    def process_env(self, name: str) -> dict[str, str]:
        """One process's environment: HTTP processes sum their gunicorn workers' metrics."""
        env = {**self.env(), **self.process_settings.get(name, {})}
        if name in HTTP_PROCESSES:
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir(name))
        if name == "gateway":
            env["GUNICORN_BIND"] = f"{HOST}:{self.ports[name]}"
            env["GATEWAY_METRICS_BIND"] = f"{HOST}:{self.metrics_port}"
        return env

    @property
    def metrics_url(self) -> str:
        """The gateway's internal listener, where /metrics is served."""
        return f"http://{HOST}:{self.metrics_port}"

    def commands(self) -> dict[str, list[str]]:
        """Every long-running process of the suite, by name."""
        commands = {name: self._gunicorn(f"{pkg}.wsgi:app", name) for name, pkg in PACKAGES.items()}
        commands["gateway"] = [
            _tool("gunicorn"),
            "--config", str(REPO_ROOT / "gateway" / "gunicorn_conf.py"),
            "--chdir", str(REPO_ROOT),
            "gateway.app:create_app",
        ]  # fmt: skip
        commands[WORKER] = [
            _tool("rq"), "worker", "--with-scheduler",
            "--worker-class", WORKER_CLASS,
            "--config", RQ_SETTINGS,
            "--serializer", "rq.serializers.JSONSerializer",
            "--path", str(REPO_ROOT),
            WORKER_QUEUE,
        ]  # fmt: skip
        commands[RELAY] = [_tool("flask"), "--app", "auth_service", "relay-user-events"]
        commands[EVENTS_USERS] = [
            sys.executable, "-m", "servicekit.streams", "events_service.lifecycle:handle_entry",
            "--group", "events", "--app", "events_service",
        ]  # fmt: skip
        commands[TICKETS_USERS] = [
            sys.executable, "-m", "servicekit.streams", "tickets_service.lifecycle:handle_entry",
            "--group", "tickets", "--app", "tickets_service",
        ]  # fmt: skip
        commands[DATAPOINTS_USERS] = [_tool("flask"), "--app", "datapoints_service", "follow-users"]
        # A job is one small mail: no fork per job.
        commands[TICKETS_MAIL] = [
            _tool("rq"), "worker",
            "--worker-class", "rq.worker.SimpleWorker",
            "--config", RQ_SETTINGS,
            "--serializer", "rq.serializers.JSONSerializer",
            "--path", str(REPO_ROOT),
            TICKETS_MAIL_QUEUE,
        ]  # fmt: skip
        # One document at a time, no fork per job: the app is built once per process.
        commands[DATAPOINTS_WORKER] = [
            _tool("rq"), "worker",
            "--worker-class", "rq.worker.SimpleWorker",
            "--config", RQ_SETTINGS,
            "--serializer", "rq.serializers.JSONSerializer",
            "--path", str(REPO_ROOT),
            DATAPOINTS_WORKER_QUEUE,
        ]  # fmt: skip
        return commands

    def _gunicorn(self, app: str, name: str) -> list[str]:
        return [
            _tool("gunicorn"),
            "--config", str(REPO_ROOT / "servicekit" / "gunicorn_conf.py"),
            "--bind", f"{HOST}:{self.ports[name]}",
            "--chdir", str(REPO_ROOT),
            app,
        ]  # fmt: skip

    def metrics_dir(self, name: str) -> Path:
        return self.var / "metrics" / name

    def log_path(self, name: str) -> Path:
        return self.var / "logs" / f"{name}.log"

    def reset_metrics(self) -> None:
        """Empty metrics folders: a process's files from an earlier run would be summed."""
        shutil.rmtree(self.var / "metrics", ignore_errors=True)
        for name in HTTP_PROCESSES:
            self.metrics_dir(name).mkdir(parents=True)


@dataclass
class RunningStack(Stack):
    """A stack whose processes are running, by name."""

    processes: Processes = field(default_factory=dict)


def _tool(name: str) -> str:
    """A console script of this virtual environment."""
    return str(Path(sys.executable).parent / name)


def migrate(stack: Stack, names: Collection[str] = tuple(PACKAGES)) -> None:
    """`flask db upgrade` for the named services, in parallel (each owns its database)."""
    running = [_flask(stack, f"migrate-{name}", PACKAGES[name], "db", "upgrade") for name in names]
    _wait_for_commands(running, "migrations")


def create_admin(stack: Stack) -> None:
    """The bootstrap superuser from ADMIN_USERNAME and ADMIN_PASSWORD, unless it exists."""
    _wait_for_commands([_flask(stack, "create-admin", "auth_service", "create-admin")], "admin")


def _flask(stack: Stack, log_name: str, app: str, *arguments: str) -> FlaskCommand:
    """A `flask --app <app>` command started in the background, logging to var/logs."""
    log_path = stack.log_path(log_name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [_tool("flask"), "--app", app, *arguments],
            cwd=REPO_ROOT,
            env=stack.env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return process, log_path


def _wait_for_commands(commands: list[FlaskCommand], what: str) -> None:
    failed = [log_path for process, log_path in commands if process.wait() != 0]
    if failed:
        raise RuntimeError(f"{what} failed:\n" + "\n".join(_tail(log) for log in failed))


def _tail(log_path: Path, lines: int = 20) -> str:
    return "\n".join([f"{log_path}:", *log_path.read_text(errors="replace").splitlines()[-lines:]])


def start_processes(stack: Stack, names: Collection[str]) -> Processes:
    """Start the named processes in the background, each logging to var/logs/<name>.log."""
    (stack.var / "logs").mkdir(parents=True, exist_ok=True)
    commands = stack.commands()
    started: Processes = {}
    for name in names:
        with stack.log_path(name).open("ab") as log_file:
            started[name] = subprocess.Popen(
                commands[name],
                cwd=REPO_ROOT,
                env=stack.process_env(name),
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
    return started


def wait_until_ready(stack: Stack, processes: Processes, timeout: float = READY_TIMEOUT) -> None:
    """Block until every process serves: an HTTP process answers /ready (the gateway
    /health), the worker has registered with RQ. Fails at once when one exits."""
    deadline = time.monotonic() + timeout
    for name, process in processes.items():
        while not _is_ready(stack, name, process):
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}: see {stack.log_path(name)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} was not ready within {timeout:.0f} s")
            time.sleep(0.1)


def _is_ready(stack: Stack, name: str, process: subprocess.Popen[bytes]) -> bool:
    if name in RQ_WORKERS:
        return _worker_registered(stack.env()["REDIS_URL"], process.pid)
    if name in CONSUMERS:  # no port: running is all they can show
        return process.poll() is None
    path = "/health" if name == "gateway" else "/ready"
    try:
        return requests.get(stack.url(name) + path, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _worker_registered(redis_url: str, pid: int) -> bool:
    with redis_from_url(redis_url) as connection:
        return any(worker.pid == pid for worker in Worker.all(connection=connection))


def stop_processes(processes: Processes) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def databases_of(processes: Collection[str]) -> list[str]:
    """The services whose databases the named processes use (the worker: the scheduler's,
    the relay: auth's, events_users: events', tickets_users and tickets_mail: tickets',
    datapoints_users and datapoints_worker: datapoints')."""
    used = {PORTLESS_DATABASES.get(name, name) for name in processes}
    return [name for name in PACKAGES if name in used]


@contextmanager
def running_stack(
    processes: Collection[str] = ALL_PROCESSES,
    *,
    settings: Mapping[str, str] | None = None,
    process_settings: Mapping[str, Mapping[str, str]] | None = None,
    redis_url: str | None = None,
    var: Path | None = None,
) -> Iterator[RunningStack]:
    """The named processes on free loopback ports, migrated, with the admin account, and
    ready to serve; stopped when the block ends.

    `settings` go to every process and win over the defaults: random secrets, and SQLite
    databases and logs in `var` (a temporary folder unless given). Without `redis_url` the
    stack gets a redis-server of its own.
    """
    with ExitStack() as cleanup:
        if var is None:
            var = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="flotilla-")))
        if redis_url is None:
            redis_url = cleanup.enter_context(running_redis(var / "redis"))
        stack = RunningStack(
            var=var,
            ports={name: free_port() for name in SERVICE_PORTS},
            metrics_port=free_port(),
            environment={
                **{name: secrets.token_urlsafe(18) for name in SECRET_SETTINGS},
                "REDIS_URL": redis_url,
                "SCHEDULER_CALL_LOG": str(var / "logs" / "api_calls.log"),
                **(settings or {}),
            },
            process_settings=process_settings or {},
        )
        stack.var.mkdir(parents=True, exist_ok=True)
        stack.reset_metrics()
        migrate(stack, databases_of(processes))
        if "auth" in processes:
            create_admin(stack)
        cleanup.callback(stop_processes, stack.processes)
        stack.processes.update(start_processes(stack, processes))
        wait_until_ready(stack, stack.processes)
        yield stack
