"""Source objects: the strings uploaded files use for regions, campaigns and indicators,
one row each (global: every document using a string shares its row and its map).

Looked up and created in sets, never a statement per string. Creating is race-safe on
PostgreSQL: `INSERT ... ON CONFLICT DO NOTHING` waits for a concurrent transaction
inserting the same string and then skips it, and the lookup after it (READ COMMITTED)
sees that transaction's row.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from datapoints_service.models import SourceCampaign, SourceIndicator, SourceRegion
from servicekit.db import utcnow

STRINGS_CHUNK = 500  # strings per statement: far below every database's parameter limit


@dataclass
class SourceIds:
    """The ids of the source strings a document has met so far, per kind."""

    regions: dict[str, int] = field(default_factory=dict)
    campaigns: dict[str, int] = field(default_factory=dict)
    indicators: dict[str, int] = field(default_factory=dict)

    def resolve(
        self,
        session: Session,
        regions: Collection[str],
        campaigns: Collection[str],
        indicators: Collection[str],
    ) -> None:
        """Make sure every string named has an id here (creating the missing rows)."""
        _resolve(session, SourceRegion, regions, self.regions)
        _resolve(session, SourceCampaign, campaigns, self.campaigns)
        _resolve(session, SourceIndicator, indicators, self.indicators)


def _resolve(session: Session, model: Any, strings: Collection[str], known: dict[str, int]) -> None:
    missing = [text for text in set(strings) if text not in known]
    if not missing:
        return
    known.update(_lookup(session, model, missing))
    new = [text for text in missing if text not in known]
    if not new:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(model).on_conflict_do_nothing(index_elements=["source_string"])
    now = utcnow()
    for chunk in _chunks(new):
        session.execute(statement, [{"source_string": text, "created_at": now} for text in chunk])
    known.update(_lookup(session, model, new))


def _lookup(session: Session, model: Any, strings: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(strings):
        rows = session.execute(
            select(model.source_string, model.id).where(model.source_string.in_(chunk))
        )
        found.update({text: int(row_id) for text, row_id in rows})
    return found


def _chunks(strings: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(strings), STRINGS_CHUNK):
        yield strings[start : start + STRINGS_CHUNK]
