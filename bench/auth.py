"""auth_service's costly operations, in process: what one request of each kind costs.

Builds auth_service on a fresh, migrated SQLite file and a private redis-server (the
embedded defaults), with the production password-hashing cost unless told otherwise, and
times with the Flask test client (no HTTP server, no gateway):

- login (`POST /auth/token/`): an argon2id verification, a session row, two RS256 signatures;
- refresh (`POST /auth/token/refresh/`): the conditional use-up, a row, two signatures;
- an authenticated read (`GET /users/<u>`): RS256 verification plus auth's own revocation
  checks (the account row and one Redis `MGET`);
- a profile picture upload (`PUT /users/<u>/pictureupload`): a 1600x1200 JPEG streamed to
  a media_service served on loopback, which checks, re-encodes and stores it.

Prints the median and p90 per operation, and operations per second of one thread.

    .venv/bin/python bench/auth.py [--rounds 50] [--cheap-hashing]
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade
from PIL import Image

import auth_service
import media_service
from auth_service.keys import KeyRing
from devstack.redis_server import running_redis
from servicekit.testing import serve_wsgi

PASSWORD = "correct horse battery"


def build_app(var: Path, redis_url: str, media_url: str, cheap_hashing: bool) -> Any:
    config: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{var / 'auth.db'}",
        "JWT_KEYS_DIR": str(var / "keys"),
        "REDIS_URL": redis_url,
        "MAIL_OUTBOX_DIR": str(var / "outbox"),
        "MEDIA_SERVICE_URL": media_url,
        "LOG_LEVEL": "WARNING",
        "LOGIN_RATE_LIMIT_USERNAME": "off",
        "LOGIN_RATE_LIMIT_ADDRESS": "off",
    }
    if cheap_hashing:
        config.update(PASSWORD_HASH_TIME_COST=1, PASSWORD_HASH_MEMORY_KIB=1024)
    app = auth_service.create_app(config)
    with app.app_context():
        upgrade()
    return app


def build_media(var: Path) -> Any:
    """media_service on its own SQLite file, trusting auth's keys (as its JWKS would)."""
    config = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{var / 'media.db'}",
        "MEDIA_STORAGE_DIR": str(var / "media"),
        "MEDIA_URL_SECRET": "bench",
        "LOG_LEVEL": "WARNING",
    }
    app = media_service.create_app(config, keys=KeyRing.from_directory(var / "keys"))
    with app.app_context():
        upgrade()
    return app


def timed(rounds: int, operation: Callable[[], None]) -> list[float]:
    operation()  # warm-up
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        operation()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def jpeg(width: int = 1600, height: int = 1200) -> bytes:
    gradient = Image.linear_gradient("L").resize((width, height))
    out = io.BytesIO()
    Image.merge("RGB", (gradient, gradient.rotate(90), gradient)).save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--cheap-hashing", action="store_true", help="argon2 at its lowest cost")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per media request
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as directory:
        var = Path(directory)
        with running_redis(var / "redis") as redis_url, serve_wsgi(build_media(var)) as media_url:
            run(build_app(var, redis_url, media_url, args.cheap_hashing), args.rounds)
    return 0


def run(app: Any, rounds: int) -> None:
    client = app.test_client()
    client.post("/users/", json={"username": "bench", "email": "b@e.org", "password": PASSWORD})
    credentials = {"username": "bench", "password": PASSWORD}
    pair = client.post("/auth/token/", json=credentials).get_json()
    auth = {"Authorization": f"Bearer {pair['access']}"}
    state = {"refresh": pair["refresh"]}
    picture = jpeg()

    def login() -> None:
        assert client.post("/auth/token/", json=credentials).status_code == 200

    def refresh() -> None:
        response = client.post("/auth/token/refresh/", json={"refresh": state["refresh"]})
        assert response.status_code == 200
        state["refresh"] = response.get_json()["refresh"]

    def read() -> None:
        assert client.get("/users/bench", headers=auth).status_code == 200

    def upload() -> None:
        response = client.put(
            "/users/bench/pictureupload",
            data={"profilePicture": (io.BytesIO(picture), "me.jpg")},
            headers=auth,
            content_type="multipart/form-data",
        )
        assert response.status_code == 202

    print(f"{'operation':<28} {'p50 ms':>8} {'p90 ms':>8} {'ops/s':>8}")
    for name, operation in (
        ("login", login),
        ("refresh (rotation)", refresh),
        ("authenticated read", read),
        (f"picture upload ({len(picture) // 1024} KiB)", upload),
    ):
        samples = sorted(timed(rounds, operation))
        p50 = statistics.median(samples)
        p90 = samples[int(len(samples) * 0.9) - 1]
        print(f"{name:<28} {p50:>8.2f} {p90:>8.2f} {1000 / p50:>8.0f}")


if __name__ == "__main__":
    raise SystemExit(main())
