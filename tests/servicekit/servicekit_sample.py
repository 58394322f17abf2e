"""A small service built with servicekit, used by servicekit's own tests.

It has one model (a thing, optionally the child of another), and one route per kind of
behaviour servicekit promises: login, staff, privilege, a seed-shaped error body, a bug
(an unexpected exception), validated input, the caller's identity, and a relayed call to
another service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app
from marshmallow import Schema, fields
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from servicekit import (
    ApiError,
    Blueprint,
    Identity,
    create_app,
    make_db,
    require_identity,
    require_privilege,
    require_staff,
)
from servicekit.http import ServiceClient
from servicekit.keys import KeyResolver

NAME = "sample"

db = make_db()


class Thing(db.Model):  # type: ignore[name-defined]
    __tablename__ = "things"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("things.id"))


class ItemSchema(Schema):
    value = fields.Integer(required=True)


class ThingSchema(Schema):
    name = fields.String(required=True)
    items = fields.List(fields.Nested(ItemSchema), load_default=list)


blp = Blueprint("things", __name__, description="Things, for servicekit's tests.")


def identity_json(identity: Identity) -> dict[str, Any]:
    return {
        "subject": identity.subject,
        "username": identity.username,
        "role": identity.role,
        "privileges": {model: sorted(acts) for model, acts in identity.privileges.items()},
        "tokenId": identity.token_id,
    }


@blp.route("/me", methods=["GET"])
def me() -> dict[str, Any]:
    return identity_json(require_identity())


@blp.route("/things/<int:thing_id>", methods=["GET"])
def get_thing(thing_id: int) -> dict[str, Any]:
    require_identity()
    thing = db.session.get(Thing, thing_id)
    if thing is None:
        raise ApiError(404, "no such thing", "not_found")
    return {"id": thing.id, "name": thing.name}


@blp.route("/things", methods=["POST"])
@blp.arguments(ThingSchema)
def create_thing(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    require_privilege("thing", "create")
    thing = Thing(name=data["name"])
    db.session.add(thing)
    db.session.commit()
    return {"id": thing.id, "name": thing.name, "items": data["items"]}, 201


@blp.route("/staff", methods=["GET"])
def staff_only() -> dict[str, Any]:
    return {"staff": require_staff().username}


@blp.route("/seed-error", methods=["GET"])
def seed_error() -> None:
    raise ApiError.with_body(422, {"detail": "seed-shaped", "fields": ["a", "b"]})


@blp.route("/boom", methods=["GET"])
def boom() -> None:
    raise RuntimeError("secret internals: password=hunter2")


@blp.route("/relay", methods=["GET"])
def relay() -> Any:
    """Calls the service at `ECHO_URL` and answers what it saw."""
    client = ServiceClient("echo", base_url=current_app.config["ECHO_URL"])
    return client.get("/echo").json()


def create_sample_app(
    config: Mapping[str, Any] | None = None,
    *,
    keys: KeyResolver | None = None,
    uses_redis: bool = False,
) -> Flask:
    return create_app(NAME, __name__, db, [blp], config=config, keys=keys, uses_redis=uses_redis)
