"""Staff pages: a static shell (HTML, its script and style sheet) served by a service.

A browser cannot send a Bearer token when it navigates, so such a page holds no data and
is public: its script signs in with `POST /auth/token/` and reads the API with the token,
where the API's own permissions apply. Every answer carries a strict
Content-Security-Policy (scripts, styles and images from this origin only), and only the
assets listed are served: no path from the URL reaches the file system unchecked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flask import Response, send_from_directory

from servicekit.app import Blueprint
from servicekit.errors import ApiError

SHARED = Path(__file__).parent / "static"
# Served with every page, from servicekit: its sign-in and authorised calls.
SHARED_ASSETS = {"staff-session.js": "text/javascript"}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class StaticPage:
    """`page` (an HTML file of `folder`) at `url_prefix/`, and `assets` ({name under
    `folder`: its content type}) at `url_prefix/assets/<name>`."""

    name: str
    url_prefix: str
    folder: Path
    page: str
    assets: Mapping[str, str]
    description: str


def page_blueprint(import_name: str, spec: StaticPage) -> Blueprint:
    blp = Blueprint(
        spec.name, import_name, url_prefix=spec.url_prefix, description=spec.description
    )

    @blp.after_request
    def protect(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-cache")
        return response

    @blp.route("/", methods=["GET"])
    @blp.doc(summary="The page (a static shell; it signs in by itself)")
    def page() -> Response:
        return send_from_directory(spec.folder, spec.page, mimetype="text/html", max_age=0)

    @blp.route("/assets/<path:name>", methods=["GET"])
    @blp.doc(summary="The page's scripts, style sheets and images")
    def asset(name: str) -> Response:
        if name in SHARED_ASSETS:
            return send_from_directory(SHARED, name, mimetype=SHARED_ASSETS[name], max_age=0)
        if name not in spec.assets:
            raise ApiError(404, "no such asset", "not_found")
        return send_from_directory(spec.folder, name, mimetype=spec.assets[name], max_age=0)

    return blp
