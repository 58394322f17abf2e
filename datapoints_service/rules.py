"""The resources' own rules beyond columns and references (engine hooks)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from datapoints_service import tree
from datapoints_service.engine.resource import Errors
from datapoints_service.models import Campaign, Indicator, IndicatorTag

NOT_SLUG = re.compile(r"[^a-z0-9_]+")
MAX_TAGS = 1000
BOUND_KEYS = frozenset({"bound_name", "mn_val", "mx_val"})


def slugify(text: str) -> str:
    """`"Fake Place 2"` -> `"fake-place-2"` (the default slug of a row written without one)."""
    return NOT_SLUG.sub("-", text.lower()).strip("-") or "x"


def campaign_dates(_session: Session, campaign: Campaign) -> Errors:
    if campaign.end_date < campaign.start_date:
        return {"end_date": "is before start_date"}
    return {}


def indicator_json(session: Session, indicator: Indicator) -> Errors:
    """`tag_json`: a list of existing tag ids; `bound_json`: a list of bounds
    ({"bound_name": text, "mn_val": number or null, "mx_val": number or null})."""
    errors = {}
    tags = indicator.tag_json
    if not _tag_ids(tags):
        errors["tag_json"] = f"a list of at most {MAX_TAGS} indicator_tag ids"
    else:
        known = set(session.scalars(select(IndicatorTag.id).where(IndicatorTag.id.in_(tags))))
        missing = sorted(set(tags) - known)
        if missing:
            errors["tag_json"] = f"no indicator_tag {', '.join(map(str, missing))}"
    if not isinstance(indicator.bound_json, list) or not all(
        _bound(item) for item in indicator.bound_json
    ):
        errors["bound_json"] = 'a list of {"bound_name", "mn_val", "mx_val"} objects'
    return errors


def _tag_ids(tags: Any) -> bool:
    return (
        isinstance(tags, list)
        and len(tags) <= MAX_TAGS
        and all(isinstance(tag, int) and not isinstance(tag, bool) for tag in tags)
    )


def _bound(item: Any) -> bool:
    if not isinstance(item, dict) or set(item) != BOUND_KEYS:
        return False
    limits = (item["mn_val"], item["mx_val"])
    numbers = all(
        value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        for value in limits
    )
    return isinstance(item["bound_name"], str) and numbers


def tag_parent(session: Session, tag: IndicatorTag) -> Errors:
    """A tag may not be put under itself or under a tag below it (tags are few: the
    walk up is short; under the tree lock, as region moves are)."""
    tree.lock(session)
    parent_id = tag.parent_tag_id
    seen: set[int] = set()
    while parent_id is not None and parent_id not in seen:
        if tag.id is not None and parent_id == tag.id:
            return {"parent_tag_id": "would make the tag its own ancestor"}
        seen.add(parent_id)
        parent_id = session.scalar(
            select(IndicatorTag.parent_tag_id).where(IndicatorTag.id == parent_id)
        )
    return {}


def tag_in_use(session: Session, tag: IndicatorTag) -> Errors:
    """A tag an indicator's `tag_json` lists is not deleted."""
    rows = session.execute(select(Indicator.id, Indicator.tag_json)).all()
    users = [str(row.id) for row in rows if tag.id in (row.tag_json or [])]
    if users:
        return {"id": f"referred to by indicator.tag_json (indicator {', '.join(users)})"}
    return {}
