"""Helpers shared by auth_service's tests (a module name no package shadows)."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from flask import Flask
from PIL import Image

from auth_service.models import User, db

PASSWORD = "correct horse battery"
SERVICE_SECRET = "test-secret"  # the apps' `SERVICE_SECRET`
USER_KEYS = {
    "publicId", "username", "firstName", "lastName", "email", "phoneNumber",
    "collegeName", "profilePicture", "dateJoined", "lastLogin",
}  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stored_user(app: Flask, username: str) -> User:
    """The user's row, detached from the session (attributes loaded)."""
    with app.app_context():
        user = db.session.query(User).filter_by(username=username).one()
        db.session.expunge(user)
        return user


def set_user(app: Flask, username: str, **values: Any) -> None:
    with app.app_context():
        user = db.session.query(User).filter_by(username=username).one()
        for name, value in values.items():
            setattr(user, name, value)
        db.session.commit()


def image_bytes(image_format: str = "PNG", size: tuple[int, int] = (8, 6), **save: Any) -> bytes:
    image = Image.new("RGB", size, (200, 30, 60))
    out = io.BytesIO()
    image.save(out, format=image_format, **save)
    return out.getvalue()


def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """The first truthy result of `check`, polled for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def outbox_messages(outbox: Path) -> list[Path]:
    return sorted(outbox.glob("*.eml")) if outbox.is_dir() else []


def reset_token_in(text: str) -> str:
    """The reset token of a reset mail's text (the one indented line)."""
    (token,) = re.findall(r"^ {4}(\S+)\r?$", text, flags=re.MULTILINE)
    return str(token)


def mailed_reset_token(outbox: Path, seen: int = 0, timeout: float = 5.0) -> str:
    """The token of the reset mail after the first `seen` ones (waiting for it to arrive)."""
    files = wait_for(lambda: outbox_messages(outbox)[seen:], timeout)
    assert files, "no new mail arrived in the outbox"
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    return reset_token_in(message.get_content())  # type: ignore[attr-defined]
