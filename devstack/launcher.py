"""`make run`: the whole suite in the foreground, on its fixed ports.

`python -m devstack run` prepares everything (secrets, Redis, migrations, the admin
account) and hands the processes to honcho; Ctrl-C stops them all.
`python -m devstack migrate` applies every service's migrations to the configured databases.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from honcho.manager import Manager
from honcho.printer import Printer

from devstack.redis_server import running_redis
from devstack.stack import SECRET_SETTINGS, Stack, create_admin, migrate
from servicekit.config import REPO_ROOT, load_environment, var_dir

DEFAULT_REDIS_PORT = 6390
SECRET_FILES = {
    "SERVICE_SECRET": "service-secret",
    "ADMIN_PASSWORD": "admin-password",
    "MEDIA_URL_SECRET": "media-url-secret",
}


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


def prepare(stack: Stack) -> None:
    """Secrets, metrics folders, migrations and the admin account, before any process starts."""
    stack.var.mkdir(parents=True, exist_ok=True)
    for env_name in SECRET_SETTINGS:
        value, created = stored_secret(stack.var, env_name)
        stack.environment[env_name] = value
        if created and env_name == "ADMIN_PASSWORD":
            user = os.environ.get("ADMIN_USERNAME", "admin")
            saved = stack.var / SECRET_FILES[env_name]
            print(f"Admin account {user!r}: password {value} (saved in {saved})")
    stack.reset_metrics()
    migrate(stack)
    create_admin(stack)


@contextmanager
def dev_redis(stack: Stack) -> Iterator[None]:
    """The configured REDIS_URL, else the bundled redis-server on DEV_REDIS_PORT."""
    if os.environ.get("REDIS_URL"):
        yield
        return
    port = int(os.environ.get("DEV_REDIS_PORT", DEFAULT_REDIS_PORT))
    with running_redis(stack.var / "redis", port) as url:
        stack.environment["REDIS_URL"] = url
        print(f"Redis (bundled redis-server) at {url}")
        yield


def run() -> int:
    """The whole suite in the foreground under honcho."""
    load_environment()
    stack = Stack(var=var_dir())
    stack.var.mkdir(parents=True, exist_ok=True)
    with dev_redis(stack):
        prepare(stack)
        return run_honcho(stack)


def run_honcho(stack: Stack) -> int:
    manager = Manager(Printer(sys.stdout))
    for name, command in stack.commands().items():
        manager.add_process(
            name,
            subprocess.list2cmdline(command),
            env=stack.process_env(name),
            cwd=str(REPO_ROOT),
        )
    print(f"Gateway on {stack.url('gateway')} - Ctrl-C stops every process.")
    manager.loop()
    return manager.returncode or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["run", "migrate"])
    args = parser.parse_args(argv)
    if args.command == "migrate":
        load_environment()
        migrate(Stack(var=var_dir()))
        return 0
    return run()
