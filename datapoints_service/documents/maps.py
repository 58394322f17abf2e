"""What a map write does to the documents waiting for it.

A map written (inserted, or updated to another master or source object) may make source
datapoints of processed documents fully mapped: those using its source object are merged
into the stored values now, document by document in id order (a later document's value
wins a cell), in the map write's transaction. The review rows and the
`master_datapoint_count` of every document using the source object (or the one it had
before) then show the map and the new counts.

A map deleted: the review rows show the source object unmapped again and the counts
drop; values already merged stay (they are stored values now, with their history).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from datapoints_service import rollup
from datapoints_service.documents import reviews
from datapoints_service.models import Document

AfterWrite = Callable[[Session, Any, dict[str, Any] | None], None]
BeforeDelete = Callable[[Session, Any], dict[str, str]]


def after_write(kind: str) -> AfterWrite:
    """The `after_write` hook of the `<kind>_map` resource (kind: region, campaign or
    indicator)."""

    def merge_waiting(session: Session, row: Any, previous: dict[str, Any] | None) -> None:
        rollup.lock(session)  # before reading which documents are processed (processing.py)
        source_object_id = int(row.source_object_id)
        touched = {source_object_id}
        if previous is not None and previous.get("source_object_id") is not None:
            touched.add(int(previous["source_object_id"]))
        documents = reviews.processed_documents_using(session, kind, touched)
        waiting = reviews.processed_documents_using(session, kind, {source_object_id})
        for document_id in waiting:
            reviews.merge_mapped(
                session, document_id, _uploader(session, document_id), (kind, source_object_id)
            )
        reviews.refresh_reviews(session, documents)

    return merge_waiting


def before_delete(kind: str) -> BeforeDelete:
    """The `before_delete` hook of the `<kind>_map` resource: the review rows and counts
    as they are without the map (it is deleted right after, in the same transaction)."""

    def unmap(session: Session, row: Any) -> dict[str, str]:
        rollup.lock(session)
        documents = reviews.processed_documents_using(session, kind, {int(row.source_object_id)})
        reviews.refresh_reviews(session, documents, reviews.Without(kind, int(row.id)))
        return {}

    return unmap


def _uploader(session: Session, document_id: int) -> int | None:
    return session.scalar(select(Document.created_by_id).where(Document.id == document_id))
