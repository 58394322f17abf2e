"""Helpers shared by activity_service's tests (a module name no package shadows)."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

# The document's upload example, the line exactly as it shows it (a Python string literal).
SEED = Path(__file__).resolve().parent / "data" / "document_payload.txt"
UPLOAD = "/sample/posts"
DOWNLOAD = "/sample/gets"
JSON = {"Content-Type": "application/json"}


def seed_payload() -> str:
    """The document's upload payload, exactly: the Python string literal it shows
    (`payload="{\\r\\n\\t\\"members\\": …"`), evaluated as Python would."""
    literal = re.search(r'^payload=(".*")$', SEED.read_text(), re.MULTILINE)
    assert literal is not None, "the document's payload line was not found"
    payload = ast.literal_eval(literal.group(1))
    assert "\r\n\t" in payload
    return str(payload)


def seed_download() -> dict[str, Any]:
    """What GET answers after the seed upload: the document's shape, each period once."""
    return {"ok": "true", **json.loads(seed_payload())}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def member(member_id: str, *periods: tuple[str, str], tz: str = "UTC", **extra: Any) -> dict:
    return {
        "id": member_id,
        "real_name": extra.pop("real_name", f"Member {member_id}"),
        "tz": tz,
        "activity_periods": [{"start_time": s, "end_time": e} for s, e in periods],
        **extra,
    }


def document(*members: dict[str, Any]) -> dict[str, Any]:
    return {"members": list(members)}


def uploader(client: FlaskClient, auth: dict[str, str]) -> Callable[..., TestResponse]:
    """POST a document (a dict, or the exact text to send) with these credentials."""

    def send(body: Any) -> TestResponse:
        text = body if isinstance(body, str | bytes) else json.dumps(body)
        return client.post(UPLOAD, data=text, headers={**auth, **JSON})

    return send
