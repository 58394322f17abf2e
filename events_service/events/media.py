"""The file store of event photos and logos: media_service's internal file store, called
with this service's token (from auth_service, proving `SERVICE_SECRET`). Built on first
use, once per app, from `MEDIA_SERVICE_URL` and `EVENTS_MEDIA_READ_TIMEOUT`."""

from __future__ import annotations

import logging
from typing import BinaryIO

from flask import Flask

from events_service.events.service import FileStore
from events_service.settings import EventsSettings
from servicekit.files import MediaUnavailable, media_file_store
from servicekit.http import ServiceTokenSource
from servicekit.settings import app_settings

log = logging.getLogger(__name__)

EXTENSION = "events.files"


class UnconfiguredStore:
    """Without `SERVICE_SECRET` this service cannot call media_service: uploads are 503,
    deletions are logged and skipped."""

    def save(self, owner: str, purpose: str, stream: BinaryIO, size: int) -> str:
        raise MediaUnavailable("file storage is not configured (SERVICE_SECRET is not set)")

    def delete(self, url: str) -> None:
        log.warning("file not deleted: SERVICE_SECRET is not set", extra={"url": url})


def file_store(app: Flask) -> FileStore:
    store = app.extensions.get(EXTENSION)
    if store is None:
        store = app.extensions.setdefault(EXTENSION, _build(app))
    return store  # type: ignore[no-any-return]


def _build(app: Flask) -> FileStore:
    secret = app.config.get("SERVICE_SECRET")
    if not secret:
        return UnconfiguredStore()
    settings = app_settings(EventsSettings)
    tokens = ServiceTokenSource(
        str(app.config["SERVICE_NAME"]), str(secret), app.config.get("AUTH_SERVICE_URL")
    )
    return media_file_store(
        settings.media_service_url, tokens, settings.media_read_timeout, noun="photo"
    )
