"""Typed settings: declared once, loaded from overrides, the environment or defaults,
converted and checked; every bad value named at start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from servicekit.settings import SettingsError, app_settings, describe, load_settings, setting


def _even(value: int) -> str | None:
    return None if value % 2 == 0 else "must be even"


@dataclass(frozen=True)
class SampleSettings:
    workers: int = setting("SAMPLE_WORKERS", 4, minimum=1, maximum=64)
    ratio: float = setting("SAMPLE_RATIO", 0.5, minimum=0, maximum=1)
    verbose: bool = setting("SAMPLE_VERBOSE", False)
    mode: str = setting("SAMPLE_MODE", "fast", choices=("fast", "safe"))
    folder: Path = setting("SAMPLE_FOLDER", lambda: Path("/srv/sample"))
    token: str | None = setting("SAMPLE_TOKEN", None, secret=True)
    hosts: tuple[str, ...] = setting("SAMPLE_HOSTS", ())
    pairs: int = setting("SAMPLE_PAIRS", 2, check=_even)

    def flask_config(self) -> dict[str, Any]:
        return {"MAX_CONTENT_LENGTH": self.workers * 1024}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORKERS", "RATIO", "VERBOSE", "MODE", "FOLDER", "TOKEN", "HOSTS", "PAIRS"):
        monkeypatch.delenv(f"SAMPLE_{name}", raising=False)


def test_defaults_when_nothing_is_set() -> None:
    settings = load_settings(SampleSettings)
    assert settings == SampleSettings(4, 0.5, False, "fast", Path("/srv/sample"), None, (), 2)


def test_environment_values_are_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMPLE_WORKERS", "12")
    monkeypatch.setenv("SAMPLE_RATIO", "0.25")
    monkeypatch.setenv("SAMPLE_VERBOSE", "yes")
    monkeypatch.setenv("SAMPLE_FOLDER", "/tmp/elsewhere")
    monkeypatch.setenv("SAMPLE_TOKEN", "s3cret")
    monkeypatch.setenv("SAMPLE_HOSTS", "a.example, b.example,,")
    settings = load_settings(SampleSettings)
    assert settings.workers == 12 and settings.ratio == 0.25 and settings.verbose is True
    assert settings.folder == Path("/tmp/elsewhere") and settings.token == "s3cret"
    assert settings.hosts == ("a.example", "b.example")


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMPLE_WORKERS", "12")
    assert load_settings(SampleSettings, {"SAMPLE_WORKERS": 3}).workers == 3
    assert load_settings(SampleSettings, {"SAMPLE_WORKERS": "5"}).workers == 5


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMPLE_WORKERS", "")
    monkeypatch.setenv("SAMPLE_TOKEN", "")
    settings = load_settings(SampleSettings)
    assert settings.workers == 4 and settings.token is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SAMPLE_WORKERS", "many", "SAMPLE_WORKERS: must be an integer, got 'many'"),
        ("SAMPLE_WORKERS", "0", "SAMPLE_WORKERS: must be at least 1, got 0"),
        ("SAMPLE_WORKERS", "65", "SAMPLE_WORKERS: must be at most 64, got 65"),
        ("SAMPLE_RATIO", "nan", "SAMPLE_RATIO: must be a finite number"),
        ("SAMPLE_RATIO", "1.5", "SAMPLE_RATIO: must be at most 1, got 1.5"),
        ("SAMPLE_VERBOSE", "maybe", "SAMPLE_VERBOSE: must be true or false, got 'maybe'"),
        ("SAMPLE_MODE", "slow", "SAMPLE_MODE: must be one of fast, safe, got 'slow'"),
        ("SAMPLE_PAIRS", "3", "SAMPLE_PAIRS: must be even"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        load_settings(SampleSettings)
    assert message in str(refused.value)


def test_every_bad_value_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMPLE_WORKERS", "-1")
    monkeypatch.setenv("SAMPLE_MODE", "slow")
    with pytest.raises(SettingsError) as refused:
        load_settings(SampleSettings)
    assert "SAMPLE_WORKERS" in str(refused.value) and "SAMPLE_MODE" in str(refused.value)


def test_describe_masks_secrets() -> None:
    described = describe(load_settings(SampleSettings, {"SAMPLE_TOKEN": "s3cret"}))
    assert described["SAMPLE_TOKEN"] == "***"
    assert described["SAMPLE_WORKERS"] == 4


def test_an_app_without_these_settings_says_so(make_app: Any) -> None:
    app: Flask = make_app()  # the sample service declares no settings of its own
    with app.app_context(), pytest.raises(RuntimeError):
        app_settings(SampleSettings)


def test_create_app_refuses_to_start_with_a_bad_value(tmp_path: Path) -> None:
    from servicekit import create_app, make_db

    with pytest.raises(SettingsError, match="SAMPLE_WORKERS: must be at least 1"):
        create_app(
            "sample",
            "tests.servicekit.servicekit_sample",
            make_db(),
            settings=SampleSettings,
            config={
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
                "SAMPLE_WORKERS": 0,
            },
        )


def test_create_app_keeps_the_loaded_settings(tmp_path: Path) -> None:
    from servicekit import create_app, make_db

    app = create_app(
        "sample",
        "tests.servicekit.servicekit_sample",
        make_db(),
        settings=SampleSettings,
        config={"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}", "SAMPLE_WORKERS": 8},
    )
    with app.app_context():
        assert app_settings(SampleSettings).workers == 8
    assert app.config["MAX_CONTENT_LENGTH"] == 8 * 1024
