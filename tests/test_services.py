"""Every service is a real app from day one: health, readiness, metrics, OpenAPI, JSON errors,
its own migrated database."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from devstack.stack import PACKAGES
from gateway.routemap import render

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_service_answers_its_standard_endpoints(
    name: str, service_app: Callable[..., Flask]
) -> None:
    package = importlib.import_module(PACKAGES[name])
    app = service_app(name, package.create_app)
    client = app.test_client()
    assert client.get("/health").get_json() == {"status": "ok", "service": name}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["database"] == "ok"
    assert b"http_requests_total" in client.get("/metrics").data
    spec = client.get("/openapi.json").get_json()
    assert spec["info"]["title"] == PACKAGES[name]
    missing = client.get("/no/such/path")
    assert missing.status_code == 404
    assert missing.get_json()["code"] == "not_found"


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_service_migrations_create_its_own_database(
    name: str, migrated_database: Callable[..., str]
) -> None:
    package = importlib.import_module(PACKAGES[name])
    url = migrated_database(name, package.create_app)
    engine = create_engine(url)
    with engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert revision is not None and revision.startswith(f"{name}_")


def test_route_map_document_matches_the_route_table() -> None:
    document = (ROOT / "docs" / "routes.md").read_text()
    assert document == render(), "docs/routes.md is stale: python -m gateway.routemap"
