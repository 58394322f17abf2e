"""The staff map page's shell: public, static, a strict policy, and only its own assets."""

from __future__ import annotations

from flask.testing import FlaskClient

from datapoints_service.map_page import ASSETS

PAGE = "/datapoints/map"


def test_the_page_is_a_static_shell_with_a_strict_policy(client: FlaskClient) -> None:
    for path in (PAGE, f"{PAGE}/"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.mimetype == "text/html"
    assert b'src="/datapoints/map/assets/map.js"' in page.data
    assert b'src="/datapoints/map/assets/staff-session.js"' in page.data
    assert b'src="/datapoints/map/assets/vendor/leaflet/leaflet.js"' in page.data
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"


def test_every_asset_is_served_with_its_type_and_nothing_else(client: FlaskClient) -> None:
    for name, mimetype in ASSETS.items():
        asset = client.get(f"{PAGE}/assets/{name}")
        assert asset.status_code == 200, name
        assert asset.mimetype == mimetype, name
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        assert asset.data, name
    script = client.get(f"{PAGE}/assets/map.js").data
    assert b"StaffSession.create" in script and b"/api/v1/geo/" in script
    assert b"/auth/token/" in client.get(f"{PAGE}/assets/staff-session.js").data
    assert b"Leaflet 1.9.4" in client.get(f"{PAGE}/assets/vendor/leaflet/leaflet.js").data
    for name in (
        "map.html",
        "vendor/leaflet/README.md",
        "vendor/leaflet/LICENSE",
        "../map_page.py",
        "..%2fmap_page.py",
        "vendor/leaflet/../../map_page.py",
        "etc/passwd",
    ):
        refused = client.get(f"{PAGE}/assets/{name}")
        assert refused.status_code == 404, name
        assert refused.mimetype == "application/json", name
