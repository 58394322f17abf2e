"""Typed settings: each service declares its own once, servicekit loads and checks them.

A service's settings are a frozen dataclass whose fields are declared with `setting()`:

    @dataclass(frozen=True)
    class MediaSettings:
        storage_dir: Path = setting("MEDIA_STORAGE_DIR", lambda: var_dir() / "media")
        quota_images: int = setting("MEDIA_QUOTA_IMAGES", 1000, minimum=1)

`load_settings(MediaSettings, overrides)` reads each variable from `overrides` (a test's
config, keyed by the variable's name), else the environment (and `.env`), else the
default; converts it to the field's type; and checks it. Every problem is reported at
once, naming the variable, and stops the start-up (`SettingsError`). A `secret=True`
setting may also be given as a file, `<VARIABLE>_FILE` (servicekit.config.env). The loaded object is
kept on the app (`app_settings(MediaSettings)` in a view) and handed to domain code as an
argument: no domain module reads configuration by itself.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, current_app

from servicekit.config import ConfigError, env, load_environment

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

S = TypeVar("S", bound="DataclassInstance")
EXTENSION = "servicekit.settings"
_META = "servicekit.setting"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ConfigError):
    """Settings that cannot be used; the message names every variable at fault."""


@dataclasses.dataclass(frozen=True)
class Rule:
    variable: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], str | None] | None = None
    secret: bool = False


def setting(
    variable: str,
    default: Any = None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] | None = None,
    check: Callable[[Any], str | None] | None = None,
    secret: bool = False,
) -> Any:
    """A field read from `variable`. `default` may be a function (computed at load time);
    `check(value)` returns a message when the value is refused; `secret` keeps the value
    out of `describe()` and lets it come from the file `<variable>_FILE` names."""
    rule = Rule(variable, minimum, maximum, choices, check, secret)
    metadata = {_META: rule}
    if callable(default):
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def load_settings(cls: type[S], overrides: Mapping[str, Any] | None = None) -> S:
    """`cls` filled from `overrides`, the environment and the defaults, every value checked."""
    load_environment()
    overrides = overrides or {}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field in dataclasses.fields(cls):
        rule = _rule_of(field)
        try:
            values[field.name] = _value_of(field, rule, hints[field.name], overrides)
        except ValueError as exc:
            problems.append(f"{rule.variable}: {exc}")
        except ConfigError as exc:  # a secret file's problem names its own variables
            problems.append(str(exc))
    if problems:
        raise SettingsError("invalid settings: " + "; ".join(problems))
    return cls(**values)


def describe(settings: Any) -> dict[str, Any]:
    """{variable: value} of loaded settings, secrets masked (for logs and diagnostics)."""
    described: dict[str, Any] = {}
    for field in dataclasses.fields(settings):
        rule = _rule_of(field)
        value = getattr(settings, field.name)
        described[rule.variable] = "***" if rule.secret and value else value
    return described


def init_settings(app: Flask, settings: Any) -> None:
    app.extensions[EXTENSION] = settings


def app_settings(cls: type[S]) -> S:
    """The current app's loaded settings of type `cls` (for api.py and CLI commands)."""
    settings = current_app.extensions.get(EXTENSION)
    if not isinstance(settings, cls):
        raise RuntimeError(f"this app has no {cls.__name__}")
    return settings


def _rule_of(field: dataclasses.Field[Any]) -> Rule:
    rule = field.metadata.get(_META)
    if not isinstance(rule, Rule):
        raise TypeError(f"settings field {field.name!r} is not declared with setting()")
    return rule


def _value_of(
    field: dataclasses.Field[Any], rule: Rule, hint: Any, overrides: Mapping[str, Any]
) -> Any:
    if rule.variable in overrides:
        raw = overrides[rule.variable]
    else:
        raw = env(rule.variable, secret=rule.secret)
    value = _default_of(field) if raw is None else _convert(raw, hint)
    _check(value, rule)
    return value


def _default_of(field: dataclasses.Field[Any]) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def _convert(raw: Any, hint: Any) -> Any:
    """`raw` (a string from the environment, or a test's typed value) as type `hint`."""
    optional, target = _unwrap_optional(hint)
    if raw is None or (optional and isinstance(raw, str) and raw == ""):
        if optional:
            return None
        raise ValueError("a value is required")
    if typing.get_origin(target) is tuple:
        return _as_tuple(raw)
    converter = _CONVERTERS.get(target)
    if converter is None:
        raise TypeError(f"settings of type {target!r} are not supported")
    return converter(raw)


def _unwrap_optional(hint: Any) -> tuple[bool, Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(members) == 1:
            return True, members[0]
    return False, hint


def _as_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"must be an integer, got {raw!r}")
    if isinstance(raw, int):
        return raw
    try:
        return int(str(raw).strip().replace("_", ""))
    except ValueError:
        raise ValueError(f"must be an integer, got {raw!r}") from None


def _as_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"must be a number, got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"must be a finite number, got {raw!r}")
    return value


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def _as_tuple(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, list | tuple):
        return tuple(str(item) for item in raw)
    return tuple(item.strip() for item in str(raw).split(",") if item.strip())


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    int: _as_int,
    float: _as_float,
    bool: _as_bool,
    str: str,
    Path: lambda raw: Path(str(raw)),
}


def _check(value: Any, rule: Rule) -> None:
    if value is None:
        return
    if rule.minimum is not None and value < rule.minimum:
        raise ValueError(f"must be at least {_number(rule.minimum)}, got {value!r}")
    if rule.maximum is not None and value > rule.maximum:
        raise ValueError(f"must be at most {_number(rule.maximum)}, got {value!r}")
    if rule.choices is not None and value not in rule.choices:
        raise ValueError(f"must be one of {', '.join(rule.choices)}, got {value!r}")
    if rule.check is not None:
        message = rule.check(value)
        if message:
            raise ValueError(message)


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)
