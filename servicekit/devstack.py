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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from servicekit.config import REPO_ROOT, SERVICE_PORTS, load_environment, var_dir
from servicekit.redisserver import start_redis

PACKAGES = {name: f"{name}_service" for name in SERVICE_PORTS if name != "gateway"}
WORKER_QUEUE = "scheduler"
SECRET_FILES = {"SERVICE_SECRET": "service-secret", "ADMIN_PASSWORD": "admin-password"}


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
        process_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(stack.metrics_dir(name))}
        if name == "worker":
            del process_env["PROMETHEUS_MULTIPROC_DIR"]
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
