"""The local stack: `make run` and the end-to-end tests start the suite through this.

`python -m servicekit.devstack run` prepares everything (secrets, Redis, migrations,
the admin account) and hands the processes to honcho, in the foreground; Ctrl-C stops
them all. The same `Stack` starts the processes for the end-to-end tests on free ports.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from servicekit.config import REPO_ROOT, SERVICE_PORTS, load_environment, var_dir
from servicekit.redisserver import start_redis

PACKAGES = {name: f"{name}_service" for name in SERVICE_PORTS if name != "gateway"}
WORKER_QUEUE = "scheduler"
# Fires calls at their exact instant and reconciles with the database (see its docstring).
WORKER_CLASS = "scheduler_service.worker.CallWorker"
# The dev stack's scheduled calls may target local servers; production allows none by default.
DEV_ALLOWED_CALL_HOSTS = "127.0.0.1,localhost"
RATE_LIMIT_SETTINGS = (
    "GATEWAY_RATE_LIMIT",
    "GATEWAY_USER_RATE_LIMIT",
    "GATEWAY_LOGIN_RATE_LIMIT",
    "GATEWAY_LOGIN_USER_RATE_LIMIT",
)
# For load generators and tests that are one client: limits would measure themselves.
RATE_LIMITS_OFF = dict.fromkeys(RATE_LIMIT_SETTINGS, "off")
SECRET_FILES = {
    "SERVICE_SECRET": "service-secret",
    "ADMIN_PASSWORD": "admin-password",
    "MEDIA_URL_SECRET": "media-url-secret",
}


@dataclass
class Stack:
    """Ports, paths and environment of one running suite."""

    var: Path
    ports: Mapping[str, int] = field(default_factory=lambda: dict(SERVICE_PORTS))
    host: str = "127.0.0.1"
    environment: dict[str, str] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.ports[name]}"

    def env(self) -> dict[str, str]:
        """The environment every process gets: databases, service URLs, secrets."""
        env = {**os.environ, "FLOTILLA_VAR_DIR": str(self.var), **self.environment}
        for name in PACKAGES:
            env.setdefault(f"{name.upper()}_SERVICE_URL", self.url(name))
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.setdefault("SCHEDULER_ALLOWED_HOSTS", DEV_ALLOWED_CALL_HOSTS)
        return env

    def commands(self) -> dict[str, list[str]]:
        """Every long-running process of the suite, by name."""
        bin_dir = Path(sys.executable).parent
        commands = {
            name: self._gunicorn(bin_dir, f"{pkg}.wsgi:app", name) for name, pkg in PACKAGES.items()
        }
        commands["gateway"] = self._gunicorn(bin_dir, "gateway.wsgi:app", "gateway")
        commands["worker"] = [
            str(bin_dir / "rq"), "worker", "--with-scheduler",
            "--worker-class", WORKER_CLASS,
            "--url", self.env()["REDIS_URL"],
            "--serializer", "rq.serializers.JSONSerializer",
            "--path", str(REPO_ROOT),
            WORKER_QUEUE,
        ]  # fmt: skip
        return commands

    def _gunicorn(self, bin_dir: Path, app: str, name: str) -> list[str]:
        return [
            str(bin_dir / "gunicorn"),
            "--config", str(REPO_ROOT / "servicekit" / "gunicorn_conf.py"),
            "--bind", f"{self.host}:{self.ports[name]}",
            "--chdir", str(REPO_ROOT),
            app,
        ]  # fmt: skip

    def metrics_dir(self, name: str) -> Path:
        return self.var / "metrics" / name


def stored_secret(var: Path, env_name: str) -> tuple[str, bool]:
    """The secret from the environment, else from var/, else a new one (saved, 0600)."""
    if os.environ.get(env_name):
        return os.environ[env_name], False
    path = var / SECRET_FILES[env_name]
    if path.exists():
        return path.read_text().strip(), False
    value = secrets.token_urlsafe(18)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")
    return value, True


def migrate_all(env: Mapping[str, str]) -> None:
    """`flask db upgrade` for every service, in parallel (each owns its database)."""
    flask = str(Path(sys.executable).parent / "flask")
    running = {
        name: subprocess.Popen([flask, "--app", pkg, "db", "upgrade"], cwd=REPO_ROOT, env=dict(env))
        for name, pkg in PACKAGES.items()
    }
    failed = [name for name, process in running.items() if process.wait() != 0]
    if failed:
        raise SystemExit(f"migrations failed for: {', '.join(failed)}")


def create_admin(env: Mapping[str, str]) -> None:
    flask = str(Path(sys.executable).parent / "flask")
    subprocess.run(
        [flask, "--app", "auth_service", "create-admin"], cwd=REPO_ROOT, env=dict(env), check=True
    )


def prepare(stack: Stack) -> None:
    """Secrets, metrics folders, migrations and the admin account, before any process starts."""
    stack.var.mkdir(parents=True, exist_ok=True)
    for env_name in SECRET_FILES:
        if stack.environment.get(env_name):
            continue
        value, created = stored_secret(stack.var, env_name)
        stack.environment[env_name] = value
        if created and env_name == "ADMIN_PASSWORD":
            user = os.environ.get("ADMIN_USERNAME", "admin")
            saved = stack.var / "admin-password"
            print(f"Admin account {user!r}: password {value} (saved in {saved})")
    metrics_root = stack.var / "metrics"
    shutil.rmtree(metrics_root, ignore_errors=True)
    migrate_all(stack.env())
    create_admin(stack.env())


def procfile_environment(stack: Stack) -> dict[str, str]:
    env = stack.env()
    for name in [*PACKAGES, "gateway"]:
        stack.metrics_dir(name).mkdir(parents=True, exist_ok=True)
    return env


def process_environment(stack: Stack, name: str, env: Mapping[str, str]) -> dict[str, str]:
    """HTTP processes share Prometheus metrics across their gunicorn workers."""
    if name == "worker":
        return dict(env)
    return {**env, "PROMETHEUS_MULTIPROC_DIR": str(stack.metrics_dir(name))}


def start_processes(
    stack: Stack, names: list[str] | None = None
) -> dict[str, subprocess.Popen[bytes]]:
    """Start the named processes (all by default) in the background, logging under var/logs."""
    env = procfile_environment(stack)
    logs = stack.var / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started: dict[str, subprocess.Popen[bytes]] = {}
    for name, command in stack.commands().items():
        if names is not None and name not in names:
            continue
        process_env = process_environment(stack, name, env)
        with open(logs / f"{name}.log", "ab") as log_file:
            started[name] = subprocess.Popen(
                command, cwd=REPO_ROOT, env=process_env, stdout=log_file, stderr=subprocess.STDOUT
            )
    return started


def wait_until_ready(stack: Stack, names: list[str], timeout: float = 60.0) -> None:
    """Block until every named HTTP process answers /health (the gateway) or /ready."""
    deadline = time.monotonic() + timeout
    for name in names:
        path = "/health" if name == "gateway" else "/ready"
        while True:
            try:
                if requests.get(stack.url(name) + path, timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become ready within {timeout} s")
            time.sleep(0.1)


def stop_processes(processes: Mapping[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run() -> int:
    """`make run`: the whole suite in the foreground under honcho."""
    load_environment()
    stack = Stack(var=var_dir())
    redis_process = None
    if not os.environ.get("REDIS_URL"):
        redis_process, url = start_redis(
            stack.var / "redis", port=int(os.environ.get("DEV_REDIS_PORT", "6390"))
        )
        stack.environment["REDIS_URL"] = url
        print(f"Redis (bundled redis-server) at {url}")
    try:
        prepare(stack)
        return run_honcho(stack)
    finally:
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)


def run_honcho(stack: Stack) -> int:
    from honcho.manager import Manager
    from honcho.printer import Printer

    env = procfile_environment(stack)
    manager = Manager(Printer(sys.stdout))
    for name, command in stack.commands().items():
        process_env = process_environment(stack, name, env)
        manager.add_process(
            name, subprocess.list2cmdline(command), env=process_env, cwd=str(REPO_ROOT)
        )
    print(f"Gateway on {stack.url('gateway')} - Ctrl-C stops every process.")
    manager.loop()
    return manager.returncode or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m servicekit.devstack")
    parser.add_argument("command", choices=["run", "migrate"])
    args = parser.parse_args(argv)
    if args.command == "migrate":
        load_environment()
        migrate_all(Stack(var=var_dir()).env())
        return 0
    return run()


if __name__ == "__main__":
    raise SystemExit(main())
