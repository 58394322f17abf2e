"""Who may change the fest's catalogue and events: staff with the `event` privilege for
the action (create, update, delete), and superusers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from servicekit.identity import require_privilege

View = TypeVar("View", bound=Callable[..., Any])


def event_privilege(action: str) -> Callable[[View], View]:
    """Refuse the request (401 anonymous, 403 without `event: <action>`) before its body
    is read: place it between `@blp.route` and `@blp.arguments`."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            require_privilege("event", action)
            return view(*args, **kwargs)

        return cast(View, checked)

    return decorate
