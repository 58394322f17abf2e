"""Organisers and volunteers on the wire, with the document's names (`role`, `task`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, fields, validate

from events_service.models import ROLE_LENGTH, USERNAME_LENGTH

MAX_TASKS = 50  # tasks of one volunteer
TASK_LENGTH = 200


class Stripped(fields.String):
    """A string without its surrounding spaces (the length is checked after stripping)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


def username_field() -> fields.Field[str]:
    return Stripped(required=True, validate=validate.Length(min=1, max=USERNAME_LENGTH))


def tasks_field(**options: Any) -> fields.List[str]:
    task = Stripped(validate=validate.Length(min=1, max=TASK_LENGTH))
    return fields.List(task, data_key="task", validate=validate.Length(max=MAX_TASKS), **options)


class OrganiserInSchema(Schema):
    """`POST /events/<publicId>/organisers`: a user and their role in the event."""

    username = username_field()
    role = Stripped(required=True, validate=validate.Length(min=1, max=ROLE_LENGTH))


class OrganiserSchema(Schema):
    username = fields.String()
    role = fields.String()


class VolunteerInSchema(Schema):
    """`POST /events/<publicId>/volunteers`: a user and their tasks (none if left out)."""

    username = username_field()
    tasks = tasks_field(load_default=list)


class VolunteerSchema(Schema):
    username = fields.String()
    tasks = fields.List(fields.String(), data_key="task")


class TasksSchema(Schema):
    """`PUT /events/<publicId>/volunteers/<username>`: the volunteer's new tasks."""

    tasks = tasks_field(required=True)


class VolunteerTasksSchema(Schema):
    """The answer to a change of tasks, as the document shows it."""

    event_id = fields.String(data_key="eventid")
    username = fields.String(data_key="volunteer")
    tasks = fields.List(fields.String(), data_key="task")
