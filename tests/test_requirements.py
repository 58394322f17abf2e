"""The three dependency locks: each complete and hashed, nested, and in agreement.

requirements.txt (runtime) is inside requirements-local.txt (what `make run` adds), which
is inside requirements-dev.txt (tests and tools). pip's hash-checking mode refuses a lock
in which any package, direct or not, is unpinned or unhashed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("requirements", "requirements-local", "requirements-dev")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: int


def logical_lines(text: str) -> list[str]:
    """Lines with their continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    lines = (line.split("#", 1)[0].strip() for line in joined.splitlines())
    return [line for line in lines if line]


def read_lock(path: Path) -> dict[str, Pin]:
    pins: dict[str, Pin] = {}
    for line in logical_lines(path.read_text(encoding="utf-8")):
        spec, *options = re.split(r"\s+(?=--)", line)
        assert not spec.startswith("-"), f"{path.name}: an option, not a package: {line!r}"
        assert options and all(HASH.fullmatch(option) for option in options), (
            f"{path.name}: {spec!r} must carry its sha256 hashes and nothing else"
        )
        requirement = Requirement(spec)
        [specifier] = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: {spec!r} is not pinned"
        name = canonicalize_name(requirement.name)
        pins[name] = Pin(name, specifier.version, len(options))
    return pins


def top_level(layer: str) -> set[str]:
    """The packages a .in file names itself (not those of the files it includes)."""
    names: set[str] = set()
    for line in logical_lines((ROOT / f"{layer}.in").read_text(encoding="utf-8")):
        if not line.startswith("-"):
            names.add(canonicalize_name(Requirement(line).name))
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_each_lock_pins_and_hashes_every_package(layer: str) -> None:
    pins = read_lock(ROOT / f"{layer}.txt")
    assert pins, f"{layer}.txt is empty"
    assert all(pin.hashes >= 1 for pin in pins.values())


@pytest.mark.parametrize("layer", LAYERS)
def test_each_lock_holds_what_its_in_file_names(layer: str) -> None:
    missing = top_level(layer) - set(read_lock(ROOT / f"{layer}.txt"))
    assert not missing, f"{layer}.txt is out of date (run `make lock`): missing {missing}"


def test_the_locks_are_nested_and_agree_on_every_version() -> None:
    runtime, local, dev = (read_lock(ROOT / f"{layer}.txt") for layer in LAYERS)
    for inner, outer, names in ((runtime, local, "runtime/local"), (local, dev, "local/dev")):
        assert set(inner) <= set(outer), f"{names}: {set(inner) - set(outer)}"
        differing = {name for name in inner if inner[name].version != outer[name].version}
        assert not differing, f"{names}: different versions of {differing}"


def test_the_runtime_lock_holds_no_development_tool() -> None:
    runtime = set(read_lock(ROOT / "requirements.txt"))
    tools = top_level("requirements-local") | top_level("requirements-dev")
    assert not runtime & tools, f"development packages in the runtime lock: {runtime & tools}"


def test_the_runtime_lock_has_the_c_parser_of_redis() -> None:
    assert "hiredis" in read_lock(ROOT / "requirements.txt")


def test_a_lock_with_an_unhashed_package_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text("flask==3.1.3 \\\n    --hash=sha256:" + "0" * 64 + "\nredis==8.1.0\n")
    with pytest.raises(AssertionError, match=re.escape("redis==8.1.0")):
        read_lock(lock)
