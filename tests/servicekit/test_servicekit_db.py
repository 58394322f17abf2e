"""Each service's `db`: its own metadata, stable constraint names, SQLite tuned."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from servicekit import make_db
from tests.servicekit.servicekit_sample import Thing, db


def test_sqlite_enforces_foreign_keys(app: Flask) -> None:
    with app.app_context():
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        db.session.add(Thing(name="orphan", parent_id=999))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        parent = Thing(name="parent")
        db.session.add(parent)
        db.session.commit()
        db.session.add(Thing(name="child", parent_id=parent.id))
        db.session.commit()
        assert db.session.query(Thing).count() == 2


def test_constraint_names_follow_the_convention(app: Flask) -> None:
    with app.app_context():
        inspector = inspect(db.engine)
        assert inspector.get_pk_constraint("things")["name"] == "pk_things"
        (foreign_key,) = inspector.get_foreign_keys("things")
        assert foreign_key["name"] == "fk_things_parent_id_things"


def test_each_db_has_its_own_metadata() -> None:
    first, second = make_db(), make_db()
    assert first.metadata is not second.metadata
    assert "things" in db.metadata.tables
    assert "things" not in first.metadata.tables


def test_sqlite_folder_is_created(make_app, tmp_path: Path) -> None:
    folder = tmp_path / "nested" / "var"
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{folder / 'sample.db'}")
    assert (folder / "sample.db").exists()
    assert app.test_client().get("/ready").status_code == 200


def test_migrations_live_beside_the_package(app: Flask) -> None:
    directory = Path(app.extensions["migrate"].directory)
    assert directory == Path(__file__).parent / "migrations"
