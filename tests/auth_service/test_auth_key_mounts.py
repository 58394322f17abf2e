"""Signing keys from a mounted secret: `JWT_GENERATE_KEYS=false` only reads `JWT_KEYS_DIR`,
and auth_service starts, signs and publishes from a read-only directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask

import auth_service
from auth_service.keys import NoSigningKey, SigningKey, add_signing_key, key_files
from servicekit.config import REPO_ROOT
from servicekit.settings import SettingsError
from tests.auth_service.auth_media import closed_port_url

PASSWORD = "correct horse battery"
CHEAP_HASHING = {"PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_KIB": 1024}

Snapshot = dict[str, tuple[int, int]]


def snapshot(directory: Path) -> Snapshot:
    """Every entry of `directory` (hidden ones too) and the directory itself: mtime, size."""
    entries = {path.name: path.stat() for path in directory.iterdir()}
    entries["."] = directory.stat()
    return {name: (st.st_mtime_ns, st.st_size) for name, st in entries.items()}


@pytest.fixture
def mounted_keys(tmp_path: Path) -> Path:
    """A directory as a secret mount holds it: two keys, the newest signs."""
    directory = tmp_path / "mounted-keys"
    add_signing_key(directory)
    add_signing_key(directory)
    return directory


def sign_in(app: Flask) -> str:
    client = app.test_client()
    created = client.post(
        "/users/", json={"username": "mount_user", "email": "m@e.org", "password": PASSWORD}
    )
    assert created.status_code == 201, created.get_json()
    response = client.post("/auth/token/", json={"username": "mount_user", "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["access"])


def published_kids(app: Flask) -> list[str]:
    jwks = app.test_client().get("/.well-known/jwks.json").get_json()
    return [key["kid"] for key in jwks["keys"]]


def test_without_generation_a_directory_without_keys_stops_the_start(tmp_path: Path) -> None:
    directory = tmp_path / "not-mounted"

    with pytest.raises(NoSigningKey) as refused:
        auth_service.create_app(
            {"JWT_KEYS_DIR": str(directory), "JWT_GENERATE_KEYS": "false", "TESTING": True}
        )

    assert isinstance(refused.value, SettingsError)
    assert f"JWT_KEYS_DIR={directory} holds no signing key" in str(refused.value)
    assert "JWT_GENERATE_KEYS is false" in str(refused.value)
    assert not directory.exists()  # not even created


def test_without_generation_keys_present_sign_and_publish_and_nothing_is_written(
    make_app: Callable[..., Flask], mounted_keys: Path
) -> None:
    before = snapshot(mounted_keys)
    oldest, newest = (SigningKey.load(path).kid for path in key_files(mounted_keys))

    app = make_app(JWT_KEYS_DIR=str(mounted_keys), JWT_GENERATE_KEYS=False)
    access = sign_in(app)

    assert jwt.get_unverified_header(access)["kid"] == newest
    assert published_kids(app) == [newest, oldest]
    assert snapshot(mounted_keys) == before


def test_a_kubernetes_secret_volume_layout_is_read(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    """The kubelet writes a Secret's files into a hidden `..<timestamp>` folder, points
    `..data` at it, and each visible name is a link through `..data`."""
    source = tmp_path / "source"
    add_signing_key(source)
    volume = tmp_path / "secret-volume"
    payload = volume / "..2026_01_01_00_00_00.000000001"
    payload.mkdir(parents=True)
    shutil.copy(source / "key-000001.pem", payload / "key-000001.pem")
    (volume / "..data").symlink_to(payload.name)
    (volume / "key-000001.pem").symlink_to("..data/key-000001.pem")
    kid = SigningKey.load(source / "key-000001.pem").kid
    before = snapshot(volume)

    app = make_app(JWT_KEYS_DIR=str(volume), JWT_GENERATE_KEYS=False)

    assert jwt.get_unverified_header(sign_in(app))["kid"] == kid
    assert published_kids(app) == [kid]
    assert snapshot(volume) == before


@pytest.mark.parametrize("command", [["add-signing-key"], ["rotate-signing-key"]])
def test_key_commands_refuse_when_generation_is_off(
    make_app: Callable[..., Flask], mounted_keys: Path, command: list[str]
) -> None:
    before = snapshot(mounted_keys)
    app = make_app(JWT_KEYS_DIR=str(mounted_keys), JWT_GENERATE_KEYS=False)

    result = app.test_cli_runner().invoke(args=command)

    assert result.exit_code == 1
    assert "JWT_GENERATE_KEYS is false" in result.output
    assert f"JWT_KEYS_DIR={mounted_keys} is only read" in result.output
    assert snapshot(mounted_keys) == before


# --- a real read-only mount (a private mount namespace) ----------------------------------


def read_only_mounts_available() -> bool:
    """Whether a private read-only bind mount can be made here, and refuses a write."""
    if shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as directory:
        script = f'mount --bind -o ro "{directory}" "{directory}" && ! touch "{directory}/w"'
        trial = subprocess.run(
            ["unshare", "--mount", "--map-root-user", "sh", "-c", script],
            capture_output=True,
            check=False,
        )
        return trial.returncode == 0


needs_read_only_mount = pytest.mark.skipif(
    not read_only_mounts_available(),
    reason="no private mount namespace here (unshare --mount --map-root-user)",
)


def probe() -> None:
    """Run in the child: auth_service from the environment, a sign-in, the JWKS, and the
    add-signing-key command; prints what it saw as JSON."""
    app = auth_service.create_app({**CHEAP_HASHING, "TESTING": True})
    access = sign_in(app)
    result = app.test_cli_runner().invoke(args=["add-signing-key"])
    report = {
        "kid": jwt.get_unverified_header(access)["kid"],
        "published": published_kids(app),
        "add_exit_code": result.exit_code,
        "add_output": result.output,
    }
    print(json.dumps(report))


def run_on_read_only_mount(directory: Path, code: str, **environment: str) -> Any:
    """`code` run by Python in a mount namespace of its own where `directory` is a
    read-only bind mount of itself (writes there fail with EROFS, even for root)."""
    script = f'mount --bind -o ro "{directory}" "{directory}" && exec "$0" -c "$1"'
    return subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", script, sys.executable, code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **environment},
    )


@pytest.fixture
def child_environment(app: Flask, tmp_path: Path) -> dict[str, str]:
    """auth_service's environment for the child: this test's migrated database, files
    outside the mount, no Redis, no media_service."""
    environment = {
        "AUTH_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "FLOTILLA_VAR_DIR": str(tmp_path / "var"),
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "MEDIA_SERVICE_URL": closed_port_url(),
        "REDIS_URL": "",
    }
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()
    return environment


@needs_read_only_mount
@pytest.mark.parametrize("generate", ["true", "false"])
def test_auth_starts_signs_and_publishes_from_a_read_only_mount(
    mounted_keys: Path, child_environment: dict[str, str], generate: str
) -> None:
    before = snapshot(mounted_keys)
    oldest, newest = (SigningKey.load(path).kid for path in key_files(mounted_keys))

    child = run_on_read_only_mount(
        mounted_keys,
        "from tests.auth_service.test_auth_key_mounts import probe; probe()",
        JWT_KEYS_DIR=str(mounted_keys),
        JWT_GENERATE_KEYS=generate,
        **child_environment,
    )

    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["kid"] == newest
    assert report["published"] == [newest, oldest]
    assert report["add_exit_code"] == 1
    if generate == "true":  # the command tried, and the mount said no
        assert f"cannot write a key to JWT_KEYS_DIR={mounted_keys}" in report["add_output"]
        assert "Read-only file system" in report["add_output"]
    else:
        assert "JWT_GENERATE_KEYS is false" in report["add_output"]
    assert snapshot(mounted_keys) == before


@needs_read_only_mount
def test_generation_on_an_empty_read_only_mount_stops_the_start_clearly(
    tmp_path: Path, child_environment: dict[str, str]
) -> None:
    empty = tmp_path / "empty-mount"
    empty.mkdir()

    child = run_on_read_only_mount(
        empty,
        "import auth_service; auth_service.create_app()",
        JWT_KEYS_DIR=str(empty),
        **child_environment,
    )

    assert child.returncode != 0
    assert (
        f"JWT_KEYS_DIR={empty} holds no signing key and the first one cannot be written "
        "there (Read-only file system)"
    ) in child.stderr
    assert list(empty.iterdir()) == []


# --- the other files auth_service reads ------------------------------------------------------


def test_jwt_private_key_file_still_names_the_key_file(
    make_app: Callable[..., Flask], mounted_keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`JWT_PRIVATE_KEY_FILE` is a key's path, not `JWT_PRIVATE_KEY` given as a file."""
    key_file = key_files(mounted_keys)[0]
    monkeypatch.setenv("JWT_PRIVATE_KEY_FILE", str(key_file))

    app = make_app()

    assert jwt.get_unverified_header(sign_in(app))["kid"] == SigningKey.load(key_file).kid
    assert published_kids(app) == [SigningKey.load(key_file).kid]


def test_create_admin_reads_admin_password_from_its_file(
    app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "admin-password"
    secret.write_text("a mounted admin password\n")
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("ADMIN_PASSWORD_FILE", str(secret))

    result = app.test_cli_runner().invoke(args=["create-admin"])

    assert result.exit_code == 0, result.output
    response = app.test_client().post(
        "/auth/token/", json={"username": "admin", "password": "a mounted admin password"}
    )
    assert response.status_code == 200, response.get_json()
