"""Processing a document (on the RQ worker): its rows become source datapoints, its
source strings review rows, and its fully mapped values master datapoints.

Transactions, in order:

1. claim: the document becomes `processing` (unless another job is processing it), its
   previous source datapoints and review rows go (re-processing replaces them);
2. `rows_total`, once the rows are counted;
3. one per chunk of rows (`DATAPOINTS_DOCUMENT_CHUNK_ROWS`): the chunk's source objects
   and source datapoints, `rows_done`, the row errors so far;
4. the end: review rows, the merge of every fully mapped value (values.merge: master data
   is written in this one transaction or not at all), the counts, `processed`.

When anything fails, the document's source datapoints and review rows are removed and it
is `failed` with the reason in `error` (source objects it created stay: they are shared
strings, harmless unmapped). Set-based throughout: bulk inserts, no ORM object per row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from datapoints_service import rollup
from datapoints_service.documents import bulk, parsing, reviews
from datapoints_service.documents.parsing import FileRefused, Row, RowError
from datapoints_service.documents.sources import SourceIds
from datapoints_service.locking import take_write_lock
from datapoints_service.models import (
    FAILED,
    PROCESSED,
    PROCESSING,
    Document,
    DocumentFile,
    DocumentReview,
    SourceDataPoint,
)
from servicekit.db import utcnow

log = logging.getLogger(__name__)

ROW_ERRORS_KEPT = 1000  # the first ones are listed on the document; all are counted
SOURCE_DATAPOINT_COLUMNS = (
    "document_id",
    "line",
    "source_region_id",
    "source_campaign_id",
    "source_indicator_id",
    "value",
)


class DocumentGone(Exception):
    """The document was deleted while it was being processed."""


@dataclass
class Progress:
    rows_done: int = 0
    source_datapoints: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < ROW_ERRORS_KEPT:
            self.errors.append(error.as_json())


@dataclass(frozen=True)
class Claimed:
    content: bytes
    uploader_id: int | None


def process(session: Session, document_id: int, chunk_rows: int) -> None:
    """Process the document now (a job's work); nothing when it is gone or already being
    processed by another job."""
    claimed = _claim(session, document_id)
    if claimed is None:
        log.info("document not processed: gone or in progress", extra={"document": document_id})
        return
    started = time.monotonic()
    try:
        progress = _process(session, document_id, claimed, chunk_rows)
        log.info(
            "document processed",
            extra={
                "document": document_id,
                "rows": progress.rows_done,
                "row_errors": progress.error_count,
                "source_datapoints": progress.source_datapoints,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
    except DocumentGone:
        session.rollback()
        log.info("document deleted while processed", extra={"document": document_id})
    except FileRefused as exc:
        _fail(session, document_id, exc.detail)
    except Exception as exc:
        _fail(session, document_id, f"processing failed: {type(exc).__name__}")
        raise


def _claim(session: Session, document_id: int) -> Claimed | None:
    take_write_lock(session)
    claimed = session.execute(
        update(Document)
        .where(Document.id == document_id, Document.status != PROCESSING)
        .values(
            status=PROCESSING,
            is_processed=False,
            rows_total=0,
            rows_done=0,
            row_errors=[],
            row_error_count=0,
            error=None,
            processed_at=None,
            source_datapoint_count=0,
            master_datapoint_count=0,
        )
        .execution_options(synchronize_session=False)
    )
    content = session.scalar(
        select(DocumentFile.content).where(DocumentFile.document_id == document_id)
    )
    if claimed.rowcount != 1 or content is None:  # type: ignore[attr-defined]
        session.rollback()
        return None
    _remove_derived(session, document_id)
    uploader = session.scalar(select(Document.created_by_id).where(Document.id == document_id))
    session.commit()
    return Claimed(bytes(content), uploader)


def _remove_derived(session: Session, document_id: int) -> None:
    session.execute(delete(SourceDataPoint).where(SourceDataPoint.document_id == document_id))
    session.execute(delete(DocumentReview).where(DocumentReview.document_id == document_id))


def _process(session: Session, document_id: int, claimed: Claimed, chunk_rows: int) -> Progress:
    text = parsing.decode(claimed.content)
    layout = parsing.read_layout(text)
    total = parsing.count_rows(text)
    take_write_lock(session)
    _update(session, document_id, rows_total=total)
    session.commit()
    progress, known = Progress(), SourceIds()
    chunk: list[Row] = []
    for item in parsing.read_rows(text, layout):
        progress.rows_done += 1
        if isinstance(item, RowError):
            progress.add_error(item)
        else:
            chunk.extend(item)
        if progress.rows_done % chunk_rows == 0:
            _store_chunk(session, document_id, chunk, known, progress)
            chunk = []
    _store_chunk(session, document_id, chunk, known, progress)
    _finish(session, document_id, claimed.uploader_id, progress)
    return progress


def _store_chunk(
    session: Session, document_id: int, rows: list[Row], known: SourceIds, progress: Progress
) -> None:
    take_write_lock(session)
    known.resolve(
        session,
        {row.region for row in rows},
        {row.campaign for row in rows},
        {row.indicator for row in rows},
    )
    if rows:
        bulk.insert_rows(
            session,
            SourceDataPoint.__table__,
            SOURCE_DATAPOINT_COLUMNS,
            [
                (
                    document_id,
                    row.line,
                    known.regions[row.region],
                    known.campaigns[row.campaign],
                    known.indicators[row.indicator],
                    row.value,
                )
                for row in rows
            ],
        )
    progress.source_datapoints += len(rows)
    _update(
        session,
        document_id,
        rows_done=progress.rows_done,
        row_errors=progress.errors,
        row_error_count=progress.error_count,
    )
    session.commit()


def _finish(
    session: Session, document_id: int, uploader_id: int | None, progress: Progress
) -> None:
    take_write_lock(session)
    # Map writes take it too: a map committed meanwhile is either seen here or sees this
    # document processed (maps.py), never neither.
    rollup.lock(session)
    reviews.write_reviews(session, document_id)
    merged = reviews.merge_mapped(session, document_id, uploader_id, only=None)
    _update(session, document_id, master_datapoint_count=merged)
    _update(
        session,
        document_id,
        status=PROCESSED,
        is_processed=True,
        source_datapoint_count=progress.source_datapoints,
        processed_at=utcnow(),
    )
    session.commit()


def _fail(session: Session, document_id: int, message: str) -> None:
    session.rollback()
    take_write_lock(session)
    _remove_derived(session, document_id)
    session.execute(
        update(Document)
        .where(Document.id == document_id)
        .values(
            status=FAILED,
            error=message,
            is_processed=False,
            source_datapoint_count=0,
            master_datapoint_count=0,
            processed_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    log.warning("document failed", extra={"document": document_id, "error": message})


def _update(session: Session, document_id: int, **columns: Any) -> None:
    """Write the document's columns; `DocumentGone` when it no longer exists."""
    result = session.execute(
        update(Document)
        .where(Document.id == document_id)
        .values(**columns)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise DocumentGone(document_id)
