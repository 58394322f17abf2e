"""Wire shapes of events, with the fest document's names.

Input: the create payload (`minSize`/`maxSize` flat) and the edit payload (sizes under
`teamProperties`) are one schema; both forms of the sizes are accepted on both routes.
Rules that need settings or the stored event (team size bound, capacity bound, opens
before closes) are service.py's.

Output: `fees` is a JSON number (300, 300.5), `date` "YYYY-MM-DD", `time` "HH:MM",
registration times ISO 8601 in UTC.
"""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from events_service.models import EVENT_NAME_LENGTH, NAME_LENGTH, TEXT_LENGTH
from servicekit.pagination import PageArgs, page_size

EVENT_ORDERS = ("date", "-date", "name", "-name")
MAX_LIST_ITEMS = 50  # prizes, rules, FAQ entries
LIST_ITEM_LENGTH = 2000
MAX_NAMES = 20  # categories or tags of one event
MAX_FILTER_NAMES = 50  # names in one filter of the list
MAX_FEES = Decimal(1_000_000_000)
MAX_SIZE = 1_000_000  # any size or capacity beyond this is nonsense (settings bound lower)
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_PATTERN = re.compile(r"^(\d{2}):(\d{2})$")
# "300", "300.50", "Rs 300", "Rs. 300/-", "INR 300", "₹300"
FEES_PATTERN = re.compile(r"^(?:rs\.?|inr|₹)?\s*(\d{1,10}(?:\.\d{1,2})?)\s*(?:/-)?$", re.I)
FREE = ("", "free", "nil", "none")


class StrictBoolean(fields.Boolean):
    """JSON true or false only (not "yes", 1 or "on")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        return value


class Count(fields.Integer):
    """A JSON integer (not 3.0, "3" or true) from `minimum` to MAX_SIZE."""

    def __init__(self, minimum: int, **kwargs: Any) -> None:
        super().__init__(strict=True, validate=validate.Range(min=minimum, max=MAX_SIZE), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        return int(super()._deserialize(value, attr, data, **kwargs))


class Name(fields.String):
    """Text with surrounding spaces stripped, never empty."""

    def __init__(self, length: int, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(min=1, max=length), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return str(super()._deserialize(value, attr, data, **kwargs)).strip()


class EventDate(fields.Field[date]):
    """ "YYYY-MM-DD", a real day."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if not isinstance(value, str) or not DATE_PATTERN.match(value):
            raise ValidationError("must be a date as YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValidationError("no such day") from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else value.isoformat()


class EventTime(fields.Field[time]):
    """ "HH:MM", 00:00 to 23:59 (local wall-clock time at the venue)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> time:
        match = TIME_PATTERN.match(value) if isinstance(value, str) else None
        if match is None:
            raise ValidationError("must be a time as HH:MM")
        try:
            return time(int(match[1]), int(match[2]))
        except ValueError:
            raise ValidationError("no such time of day") from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else value.strftime("%H:%M")


class Fees(fields.Field[Decimal]):
    """A number (300, 300.5) or a text ("Rs 300", "300", "Free"); stored as a Decimal of
    at most two decimals, answered as a JSON number."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValidationError('must be a number or a text such as "Rs 300" or "Free"')
        if isinstance(value, str):
            return _fees_of_text(value)
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise ValidationError("must be a number") from None
        return _checked_fees(amount)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else json_number(value)


def _fees_of_text(text: str) -> Decimal:
    text = text.strip()
    if text.casefold() in FREE:
        return Decimal(0)
    match = FEES_PATTERN.match(text)
    if match is None:
        raise ValidationError('must be an amount such as 300, "300", "Rs 300" or "Free"')
    return _checked_fees(Decimal(match[1]))


def _checked_fees(amount: Decimal) -> Decimal:
    if not amount.is_finite():
        raise ValidationError("must be a number")
    if amount < 0:
        raise ValidationError("must not be negative")
    if amount > MAX_FEES:
        raise ValidationError(f"at most {MAX_FEES}")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError("at most two decimals")
    return amount.quantize(Decimal("0.01"))


def json_number(amount: Decimal) -> int | float:
    """300 for 300.00, 300.5 for 300.50."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def text_list(length: int = LIST_ITEM_LENGTH, items: int = MAX_LIST_ITEMS) -> fields.List[str]:
    return fields.List(
        fields.String(validate=validate.Length(max=length)), validate=validate.Length(max=items)
    )


class TeamPropertiesSchema(Schema):
    min_size = Count(1, data_key="minSize")
    max_size = Count(1, data_key="maxSize")


class EventInputSchema(Schema):
    """`POST /events` (name, date and time required); `PUT /events/<publicId>` loads the
    same keys partially (EventEditSchema): the keys sent replace the stored values."""

    name = Name(EVENT_NAME_LENGTH, required=True)
    description = fields.String(validate=validate.Length(max=TEXT_LENGTH))
    date = EventDate(required=True, metadata={"example": "2019-09-24"})
    time = EventTime(required=True, metadata={"example": "09:30"})
    venue = fields.String(validate=validate.Length(max=EVENT_NAME_LENGTH))
    fees = Fees(metadata={"description": 'a number, or a text such as "Rs 300" or "Free"'})
    prize = text_list()
    team_event = StrictBoolean(data_key="teamEvent")
    min_size = Count(1, data_key="minSize")
    max_size = Count(1, data_key="maxSize")
    team_properties = fields.Nested(TeamPropertiesSchema, data_key="teamProperties")
    rules = text_list()
    faq = fields.List(
        fields.Tuple(
            (
                fields.String(validate=validate.Length(max=LIST_ITEM_LENGTH)),
                fields.String(validate=validate.Length(max=LIST_ITEM_LENGTH)),
            )
        ),
        validate=validate.Length(max=MAX_LIST_ITEMS),
        metadata={"description": "[question, answer] pairs"},
    )
    category = text_list(NAME_LENGTH, MAX_NAMES)
    tags = text_list(NAME_LENGTH, MAX_NAMES)
    capacity = Count(0, allow_none=True, metadata={"description": "seats; null: no limit"})
    registration_opens = fields.AwareDateTime(data_key="registrationOpens", allow_none=True)
    registration_closes = fields.AwareDateTime(data_key="registrationCloses", allow_none=True)

    @validates_schema
    def check_sizes_agree(self, data: dict[str, Any], **_kwargs: Any) -> None:
        nested = data.get("team_properties") or {}
        for name, key in (("min_size", "minSize"), ("max_size", "maxSize")):
            if name in data and name in nested and data[name] != nested[name]:
                raise ValidationError(f"{key} and teamProperties.{key} differ", key)

    @post_load
    def flatten_sizes(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        data.update(data.pop("team_properties", None) or {})
        if "faq" in data:
            data["faq"] = [list(pair) for pair in data["faq"]]
        return data


class EventEditSchema(EventInputSchema):
    """`PUT /events/<publicId>`: load with `partial=True`."""


class EventsQuerySchema(PageArgs):
    """`GET /events?limit&page&category&order&tags`: empty values (the document's own
    example sends them) mean the defaults."""

    limit = page_size(20, 100)
    category = fields.List(
        fields.String(validate=validate.Length(max=NAME_LENGTH)),
        load_default=list,
        validate=validate.Length(max=MAX_FILTER_NAMES),
    )
    tags = fields.List(
        fields.String(validate=validate.Length(max=NAME_LENGTH)),
        load_default=list,
        validate=validate.Length(max=MAX_FILTER_NAMES),
    )
    order = fields.String(load_default="date", validate=validate.OneOf(EVENT_ORDERS))

    @pre_load
    def drop_empty_values(self, data: Any, **_kwargs: Any) -> dict[str, Any]:
        loaded: dict[str, Any] = {}
        for key in data:
            values = data.getlist(key) if hasattr(data, "getlist") else [data[key]]
            if key in ("category", "tags"):
                names = [n.strip() for v in values if isinstance(v, str) for n in v.split(",")]
                loaded[key] = [n for n in names if n]
            elif values[-1] != "":
                loaded[key] = values[-1]
        return loaded


# Output


class EventSummarySchema(Schema):
    """An event in `GET /events`, as the document lists one."""

    public_id = fields.String(data_key="publicId")
    event_picture = fields.String(attribute="picture_url", data_key="eventPicture", allow_none=True)
    event_logo = fields.String(attribute="logo_url", data_key="eventLogo", allow_none=True)
    name = fields.String()
    description = fields.String()
    date = EventDate()
    time = EventTime()
    venue = fields.String()
    category = fields.Function(lambda event: [c.name for c in event.categories])
    tags = fields.Function(lambda event: [t.name for t in event.tags])


class EventsPageSchema(Schema):
    events = fields.List(fields.Nested(EventSummarySchema))
    pages = fields.Integer(metadata={"description": "how many pages there are"})
    currentpage = fields.Integer(metadata={"description": "this page's number (from 1)"})
    total = fields.Integer(metadata={"description": "how many events match"})


class _EventBodySchema(Schema):
    """What every answer about one event holds."""

    public_id = fields.String(data_key="publicId")
    name = fields.String()
    description = fields.String()
    date = EventDate()
    time = EventTime()
    venue = fields.String()
    fees = Fees()
    prize = fields.List(fields.String())
    team_event = fields.Boolean(data_key="teamEvent")
    rules = fields.List(fields.String())
    faq = fields.List(fields.List(fields.String()))
    category = fields.Function(lambda event: [c.name for c in event.categories])
    tags = fields.Function(lambda event: [t.name for t in event.tags])
    capacity = fields.Integer(allow_none=True)
    registration_opens = fields.DateTime(data_key="registrationOpens", allow_none=True)
    registration_closes = fields.DateTime(data_key="registrationCloses", allow_none=True)


class EventDetailSchema(_EventBodySchema):
    """`GET /events/<publicId>`: sizes under `teamEventProperties`, the picture URLs."""

    event_picture = fields.String(attribute="picture_url", data_key="eventPicture", allow_none=True)
    event_logo = fields.String(attribute="logo_url", data_key="eventLogo", allow_none=True)
    team_event_properties = fields.Function(
        lambda event: {"minSize": event.min_size, "maxSize": event.max_size},
        data_key="teamEventProperties",
    )


class EventWrittenSchema(_EventBodySchema):
    """`POST /events` (201) and `PUT /events/<publicId>` (202): the create payload's keys
    (sizes flat) and `publicId`; the edit answer adds the document's `eventid`."""

    min_size = fields.Integer(data_key="minSize")
    max_size = fields.Integer(data_key="maxSize")


class EventEditedSchema(EventWrittenSchema):
    eventid = fields.Function(lambda event: event.public_id)


class PhotosSchema(Schema):
    public_id = fields.String(data_key="publicId")
    event_picture = fields.String(attribute="picture_url", data_key="eventPicture", allow_none=True)
    event_logo = fields.String(attribute="logo_url", data_key="eventLogo", allow_none=True)


class DeletedSchema(Schema):
    message = fields.String()
