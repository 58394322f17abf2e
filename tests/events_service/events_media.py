"""A real media_service on loopback for the photo tests, trusting the service tokens of
the test's auth_service (their key folder), as auth_service's own picture tests serve it."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

import media_service
from auth_service.keys import KeyRing
from servicekit.testing import serve_wsgi
from tests.auth_service.auth_media import MediaRecorder, MediaServer


@contextmanager
def served_media(
    service_app: Callable[..., Flask], tmp_path: Path, **config: Any
) -> Iterator[MediaServer]:
    """media_service on its own database and storage folder in the test's folder (one per
    test: a second would share its database)."""
    storage_dir = tmp_path / "media"
    app = service_app(
        "media",
        media_service.create_app,
        keys=KeyRing.from_directory(tmp_path / "keys"),  # the test's auth_service signs with it
        MEDIA_STORAGE_DIR=str(storage_dir),
        MEDIA_URL_SECRET="test",
        **config,
    )
    recorder = MediaRecorder(app)
    with serve_wsgi(recorder) as url:
        yield MediaServer(url, app, storage_dir, recorder)


def upload(
    client: FlaskClient,
    public_id: str,
    headers: dict[str, str],
    **files: bytes | list[bytes],
) -> Any:
    """POST /events/<publicId>/photo with these multipart files (field -> bytes)."""
    data: dict[str, Any] = {}
    for field, content in files.items():
        contents = content if isinstance(content, list) else [content]
        data[field] = [(io.BytesIO(each), f"{field}.png") for each in contents]
    return client.post(
        f"/events/{public_id}/photo",
        data=data,
        headers=headers,
        content_type="multipart/form-data",
    )
