"""The staff map page, served through the gateway at `/datapoints/map`.

A browser cannot send a Bearer token when it navigates, so the page is a static shell
with no data in it (public, like the scheduler's staff page): its script signs in with
`POST /auth/token/`, keeps the access token in the tab's sessionStorage, lets staff only
go on (the token's role claim), and reads campaigns, indicators and `GET /api/v1/geo`
with the token, where the API's permissions apply as to any caller. It draws the regions
with Leaflet, vendored under `static/vendor/leaflet/` (no tile server: the page works
without any network but this origin's). A strict Content-Security-Policy allows scripts,
styles and images from this origin only, and the page renders data as text, never as
HTML.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response, send_from_directory

from servicekit import ApiError, Blueprint

STATIC = Path(__file__).parent / "static"
LEAFLET = "vendor/leaflet"
LEAFLET_IMAGES = ("layers.png", "layers-2x.png", "marker-icon.png", "marker-icon-2x.png")
# Every file the page may load, with its type; any other name is not found (no path
# from the URL ever reaches the file system unchecked).
ASSETS = {
    "map.js": "text/javascript",
    "map.css": "text/css",
    f"{LEAFLET}/leaflet.js": "text/javascript",
    f"{LEAFLET}/leaflet.css": "text/css",
    **{f"{LEAFLET}/images/{name}": "image/png" for name in (*LEAFLET_IMAGES, "marker-shadow.png")},
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)

blp = Blueprint(
    "map_page",
    __name__,
    url_prefix="/datapoints/map",
    description="The staff map page: a static shell (public) that signs in by itself.",
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
@blp.doc(summary="The map page (a static shell; it signs in by itself)")
def page() -> Response:
    return send_from_directory(STATIC, "map.html", mimetype="text/html", max_age=0)


@blp.route("/assets/<path:name>", methods=["GET"])
@blp.doc(summary="The map page's script, style sheet, and the vendored Leaflet")
def asset(name: str) -> Response:
    if name not in ASSETS:
        raise ApiError(404, "no such asset", "not_found")
    return send_from_directory(STATIC, name, mimetype=ASSETS[name], max_age=0)
