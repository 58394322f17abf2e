"""Wire shapes of categories and tags: `{name, description}`."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from events_service.models import NAME_LENGTH, TEXT_LENGTH


def name_key(name: str) -> str:
    """What names are compared by: stripped and case-folded ("Coding " == "coding")."""
    return name.strip().casefold()


def check_name(value: str) -> None:
    """A name a path can carry back (no '/', no control characters), of bounded length
    even once folded (folding can lengthen a name: "ß" is "ss")."""
    name = value.strip()
    if not name:
        raise ValidationError("must not be empty")
    if len(name) > NAME_LENGTH or len(name_key(name)) > NAME_LENGTH:
        raise ValidationError(f"at most {NAME_LENGTH} characters")
    if "/" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValidationError("must not contain '/' or control characters")


class StrippedString(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return str(super()._deserialize(value, attr, data, **kwargs)).strip()


class EntrySchema(Schema):
    """A category or a tag: `POST` takes it (description optional), every route answers it."""

    name = StrippedString(required=True, validate=check_name)
    description = fields.String(
        load_default="", validate=validate.Length(max=TEXT_LENGTH), metadata={"example": ""}
    )


class DescriptionSchema(Schema):
    """`PUT /events/category/<name>`, `PUT /events/tags/<name>`."""

    description = fields.String(required=True, validate=validate.Length(max=TEXT_LENGTH))
