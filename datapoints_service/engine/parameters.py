"""Query strings of the v1 routes (datapoint, dataentry, geo): each parameter once, known
ones only, each read as its kind; every problem collected by name and refused at once
(400 `invalid_parameters`), in the v2 listings' shape."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date
from typing import TypeVar

from datapoints_service.engine.errors import InvalidParameters
from datapoints_service.engine.fields import Kind, query_value
from datapoints_service.engine.listing import MAX_IN_VALUES

T = TypeVar("T")


class Parameters:
    """`params` ({key: its values}) checked against `known`: `single` holds each good
    key's one value, `errors` what is wrong so far."""

    def __init__(self, params: Mapping[str, Sequence[str]], known: Collection[str]) -> None:
        self.errors: dict[str, str] = {}
        self.single: dict[str, str] = {}
        for key, values in params.items():
            if key not in known:
                self.errors[key] = f"unknown parameter {key!r}"
            elif len(values) != 1:
                self.errors[key] = "given more than once"
            else:
                self.single[key] = values[0]

    def ids(self, name: str) -> list[int] | None:
        """A comma-separated list of ids (None when not given or wrong)."""
        if name not in self.single:
            return None
        items = self.single[name].split(",")
        if len(items) > MAX_IN_VALUES:
            self.errors[name] = f"at most {MAX_IN_VALUES} values"
            return None
        return self._read(name, lambda: [int(query_value(Kind.INT, item)) for item in items])

    def integer(self, name: str) -> int | None:
        if name not in self.single:
            return None
        return self._read(name, lambda: int(query_value(Kind.INT, self.single[name])))

    def date(self, name: str) -> date | None:
        if name not in self.single:
            return None
        value: date | None = self._read(name, lambda: query_value(Kind.DATE, self.single[name]))
        return value

    def refuse(self, name: str, problem: str) -> None:
        self.errors.setdefault(name, problem)

    def check(self) -> None:
        """400 naming every parameter found wrong."""
        if self.errors:
            raise InvalidParameters(errors=self.errors)

    def _read(self, name: str, read: Callable[[], T]) -> T | None:
        try:
            return read()
        except ValueError as exc:
            self.errors[name] = str(exc)
            return None
