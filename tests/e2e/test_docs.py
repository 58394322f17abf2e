"""The suite's API document and its docs page, through the real stack and a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from servicekit.testing import chromium_dom

# One operation of each of three services, as the docs page lists them.
EXPECTED = {"/users/": "auth", "/sample/posts": "activity", "/api/schedule-api/": "scheduler"}


def test_merged_document_covers_the_services(gateway_url: str) -> None:
    spec = requests.get(f"{gateway_url}/openapi.json", timeout=30).json()
    assert "x-unavailable-services" not in spec
    for path, service in EXPECTED.items():
        operations = spec["paths"].get(path) or spec["paths"].get(path.rstrip("/"))
        assert operations, f"{path} missing"
        tags = {tag for operation in operations.values() if isinstance(operation, dict)
                for tag in operation.get("tags", [])}  # fmt: skip
        assert any(tag.startswith(f"{service}_service") for tag in tags), (path, tags)


def test_docs_page_lists_operations_of_three_services(gateway_url: str, tmp_path: Path) -> None:
    dom = chromium_dom(f"{gateway_url}/docs", tmp_path / "chromium")
    listed = set(re.findall(r'data-path="([^"]+)"', dom))
    for path in EXPECTED:
        assert path in listed or path.rstrip("/") in listed, (path, sorted(listed)[:30])
