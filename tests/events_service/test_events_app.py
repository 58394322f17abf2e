"""events_service starts with its settings checked and asks auth_service about users."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from events_service.context import events_context
from events_service.errors import DirectoryDown, UnknownUsers
from events_service.people import resolve_users
from servicekit.settings import SettingsError
from tests.real_auth import COLLEGE, AuthServer, User


def test_health_answers(client: FlaskClient) -> None:
    assert client.get("/health").status_code == 200


def test_a_bad_setting_stops_the_start(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(SettingsError, match="EVENTS_MAX_TEAM_SIZE"):
        make_app(EVENTS_MAX_TEAM_SIZE=0)


def test_users_resolve_through_auth_service(app: Flask, alice: User, auth: AuthServer) -> None:
    auth.add_user("dave")
    auth.disable("dave")
    directory = events_context(app).directory

    found = resolve_users(directory, ["alice"])

    assert found["alice"].public_id == alice.public_id
    assert found["alice"].college_name == COLLEGE
    with pytest.raises(UnknownUsers, match="'ghost', 'dave'"):
        resolve_users(directory, ["alice", "ghost", "dave"])


def test_without_a_directory_a_write_naming_users_is_503(make_app: Callable[..., Flask]) -> None:
    app = make_app(SERVICE_SECRET="")
    with pytest.raises(DirectoryDown):
        resolve_users(events_context(app).directory, ["alice"])
