"""Fetch the Compose Specification JSON schema for the compose-file test.

The schema ships inside the `docker-compose` 1.29.2 wheel on PyPI; only that one JSON
file is extracted (the package itself is not installed).
Usage: python -m tests.support.compose_schema <output path>
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL_REQUIREMENT = "docker-compose==1.29.2"
SCHEMA_MEMBER = "compose/config/compose_spec.json"


def fetch(output: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--dest", scratch, WHEEL_REQUIREMENT],
            check=True,
        )  # fmt: skip
        wheel = next(Path(scratch).glob("docker_compose-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            schema = archive.read(SCHEMA_MEMBER)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(schema)


if __name__ == "__main__":
    fetch(Path(sys.argv[1]))
