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

from servicekit.pages import StaticPage, page_blueprint

STATIC = Path(__file__).parent / "static"
LEAFLET = "vendor/leaflet"
LEAFLET_IMAGES = ("layers.png", "layers-2x.png", "marker-icon.png", "marker-icon-2x.png")
# Every file the page may load, with its type.
ASSETS = {
    "map.js": "text/javascript",
    "map.css": "text/css",
    f"{LEAFLET}/leaflet.js": "text/javascript",
    f"{LEAFLET}/leaflet.css": "text/css",
    **{f"{LEAFLET}/images/{name}": "image/png" for name in (*LEAFLET_IMAGES, "marker-shadow.png")},
}

blp = page_blueprint(
    __name__,
    StaticPage(
        name="map_page",
        url_prefix="/datapoints/map",
        folder=STATIC,
        page="map.html",
        assets=ASSETS,
        description="The staff map page: a static shell (public) that signs in by itself.",
    ),
)
