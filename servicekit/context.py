"""A service's context: what its domain code works with (its settings and the clients
built once from them), kept on the app.

`create_app` builds it once and calls `attach_context(app, context)`; api.py and the
commands get it back with `context_of(app, TheContext)` and hand it to the domain code,
which reads no configuration itself.
"""

from __future__ import annotations

from typing import TypeVar

from flask import Flask

EXTENSION = "servicekit.context"

C = TypeVar("C")


def attach_context(app: Flask, context: object) -> None:
    app.extensions[EXTENSION] = context


def context_of(app: Flask, cls: type[C]) -> C:
    """The context `create_app` attached to `app`, which must be a `cls`."""
    context = app.extensions.get(EXTENSION)
    if not isinstance(context, cls):
        raise RuntimeError(f"this app has no {cls.__name__}")
    return context
