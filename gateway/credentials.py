"""The username a credential route's body names, for the per-username login limit.

Credential bodies are small (the route table caps them) and read whole before admission.
JSON, urlencoded forms and multipart forms are read (the image API's `/api-token-auth/`
takes all three); a body the gateway cannot inspect safely — JSON nested deeper than the
parser allows, a form of too many parts — is refused with 400, so no encoding of a body
escapes the limit. A body that is merely not what it claims to be names no one and goes
on: the service answers it.
"""

from __future__ import annotations

import io

import orjson
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import parse_form_data

from gateway.errors import GatewayError

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_FORM_PARTS = 50


def username_from(body: bytes, content_type: str) -> str | None:
    kind = content_type.split(";")[0].strip().lower()
    value = _from_form(body, content_type) if kind in FORM_TYPES else _from_json(body)
    return value if isinstance(value, str) and value else None


def _from_json(body: bytes) -> object:
    try:
        parsed = orjson.loads(body or b"null")
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise uninspectable("JSON nested too deeply") from exc
        return None
    return parsed.get("username") if isinstance(parsed, dict) else None


def _from_form(body: bytes, content_type: str) -> object:
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    try:
        _, form, _ = parse_form_data(environ, max_form_parts=MAX_FORM_PARTS, silent=False)
    except RequestEntityTooLarge as exc:
        raise uninspectable("a form of too many parts") from exc
    except ValueError:  # not the form its Content-Type says
        return None
    return form.get("username")


def uninspectable(reason: str) -> GatewayError:
    return GatewayError(400, "bad_request", f"credentials body not readable: {reason}")
