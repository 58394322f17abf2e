"""CSV uploads: POST /api/v2/document/, PUT and DELETE /api/v2/document/<id>.

An upload is checked at the door (size, text, header) and stored with its bytes; the RQ
worker processes it after the commit (datapoints_service/documents/processing.py). The
listing and `GET /<id>` are the generic v2 routes (datapoints_service/api.py).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, jsonify, request
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from datapoints_service.answers import envelope
from datapoints_service.context import datapoints_context
from datapoints_service.documents import jobs, parsing
from datapoints_service.documents.parsing import FileTooLarge
from datapoints_service.engine import reading
from datapoints_service.engine.errors import Conflict, Forbidden, InvalidValues, NotFound
from datapoints_service.engine.fields import MAX_INT
from datapoints_service.engine.listing import parse_query
from datapoints_service.engine.resource import Caller
from datapoints_service.locking import take_write_lock
from datapoints_service.models import (
    FAILED,
    PROCESSING,
    QUEUED,
    DataPoint,
    Document,
    DocumentFile,
    DocumentReview,
    SourceDataPoint,
    User,
    UserPermission,
    db,
)
from datapoints_service.resources import RESOURCES
from datapoints_service.settings import DatapointsSettings
from datapoints_service.users import ensure_user
from servicekit import Blueprint, require_identity
from servicekit.app import redis_client
from servicekit.bodies import FORM_TYPES, json_body
from servicekit.errors import DomainError

blp = Blueprint(
    "documents",
    __name__,
    url_prefix="/api/v2",
    description=__doc__,
)

UPLOAD_CSV = "upload_csv"
DEFAULT_FILE_NAME = "upload.csv"
FILE_NAME_LENGTH = 255
FIELDS = frozenset({"docfile", "doc_text", "source_id"})
# Room for a body's framing around the file: JSON escapes (a CSV's quotes and line ends
# double at most), multipart headers. The file itself is then held to the setting.
BODY_OVERHEAD = 64 * 1024


class QueueUnavailable(DomainError):
    status, code = 503, "queue_unavailable"
    message = "documents cannot be queued for processing now; nothing was stored: try again"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "30"}


@dataclass(frozen=True)
class Upload:
    """What a request sends: the file's bytes (None: keep the document's), its name,
    its source id."""

    content: bytes | None
    name: str | None
    source_id: int | None
    source_given: bool


@blp.route("/document", methods=["POST"])
def upload() -> tuple[Response, int]:
    """Upload a CSV file (multipart `docfile`, or JSON `doc_text`): 201 with its id."""
    caller, settings = Caller(require_identity()), _settings()
    session = db.session()
    _require_upload_permission(session, caller)
    session.rollback()  # the check only read; the write lock comes first below
    sent = _read_upload(settings.document_max_bytes)
    if sent.content is None:
        raise InvalidValues(errors={"docfile": "send a CSV file (docfile) or doc_text"})
    text = _checked_text(sent.content)
    connection = _queue_connection()
    take_write_lock(session)
    document = Document(
        guid=uuid.uuid4().hex,
        docfile=sent.name or DEFAULT_FILE_NAME,
        doc_text=parsing.preview(text),
        source_id=sent.source_id,
        created_by_id=ensure_user(session, caller.identity),
        status=QUEUED,
    )
    session.add(document)
    session.flush()
    document_id = int(document.id)
    session.add(DocumentFile(document_id=document_id, content=sent.content))
    session.commit()
    try:
        jobs.enqueue(connection, document_id, settings.document_job_timeout)
    except RedisError as exc:
        _remove(session, document_id)
        raise QueueUnavailable() from exc
    return jsonify({"objects": {"new_id": document_id}, "meta": None, "error": None}), 201


@blp.route("/document/<int:document_id>", methods=["PUT"])
def reprocess(document_id: int) -> Response:
    """Process the document again (body `{}`), or with new content (`docfile` or
    `doc_text`): 200 with the document."""
    caller, settings = Caller(require_identity()), _settings()
    sent = _read_upload(settings.document_max_bytes)
    text = None if sent.content is None else _checked_text(sent.content)
    session = db.session()
    take_write_lock(session)
    document = _writable_document(session, caller, document_id)
    if sent.content is not None:
        _require_upload_permission(session, caller)
    connection = _queue_connection()
    if sent.content is not None and text is not None:
        document.doc_text = parsing.preview(text)
        _replace_content(session, document.id, sent.content)
    if sent.name is not None:
        document.docfile = sent.name
    if sent.source_given:
        document.source_id = sent.source_id
    document.status, document.error = QUEUED, None
    session.commit()
    try:
        jobs.enqueue(connection, document.id, settings.document_job_timeout)
    except RedisError as exc:
        _mark_unqueued(session, document.id)
        raise QueueUnavailable("the document could not be queued: send the PUT again") from exc
    return _document_envelope(session, caller, document.id)


@blp.route("/document/<int:document_id>", methods=["DELETE"])
def remove(document_id: int) -> tuple[str, int]:
    """Delete the document, its file, source datapoints and review rows (master
    datapoints it wrote stay, no longer attributed to it): 204."""
    caller = Caller(require_identity())
    session = db.session()
    take_write_lock(session)
    _writable_document(session, caller, document_id)
    _remove(session, document_id)
    return "", 204


def _settings() -> DatapointsSettings:
    return datapoints_context(current_app).settings


def _require_upload_permission(session: Session, caller: Caller) -> None:
    if caller.staff:
        return
    granted = session.scalar(
        select(
            exists().where(
                UserPermission.auth_code == UPLOAD_CSV,
                UserPermission.user_id == User.id,
                User.public_id == caller.identity.subject,
            )
        )
    )
    if not granted:
        raise Forbidden(f"uploading documents needs the {UPLOAD_CSV} permission")


def _writable_document(session: Session, caller: Caller, document_id: int) -> Document:
    """The caller's own document (staff: any), not being processed right now."""
    if document_id > MAX_INT:
        raise NotFound(f"no document {document_id}")
    statement = select(Document).where(Document.id == document_id)
    if not caller.staff:
        statement = statement.where(Document.created_by_id == caller.user_id)
    document: Document | None = session.scalar(statement)
    if document is None:
        raise NotFound(f"no document {document_id}")
    if document.status == PROCESSING:
        raise Conflict(
            "the document is being processed: try again once it is processed or failed",
            errors={"status": PROCESSING},
        )
    return document


def _read_upload(max_bytes: int) -> Upload:
    request.max_content_length = 2 * max_bytes + BODY_OVERHEAD
    if request.mimetype in FORM_TYPES:
        upload = _form_upload(max_bytes)
    else:
        upload = _json_upload(json_body(require_object=True, cache=False))
    if upload.content is not None and len(upload.content) > max_bytes:
        raise FileTooLarge(f"the file is over the limit of {max_bytes} bytes")
    return upload


def _form_upload(max_bytes: int) -> Upload:
    unknown = sorted((set(request.form) | set(request.files)) - FIELDS)
    if unknown:
        raise InvalidValues(errors=dict.fromkeys(unknown, "unknown field"))
    file = request.files.get("docfile")
    name: str | None
    if file is not None:
        content: bytes | None = file.stream.read(max_bytes + 1)
        name = _file_name(file.filename or "")
    else:
        text = request.form.get("doc_text")
        content = None if text is None else text.encode("utf-8")
        name = _file_name(request.form["docfile"]) if "docfile" in request.form else None
    source = request.form.get("source_id")
    return Upload(content, name, _source_id(source or None), source is not None)


def _json_upload(body: dict[str, Any]) -> Upload:
    errors = {key: "unknown field" for key in body if key not in FIELDS}
    text, name = body.get("doc_text"), body.get("docfile")
    if text is not None and not isinstance(text, str):
        errors["doc_text"] = "the CSV text, as a string"
    if name is not None and not isinstance(name, str):
        errors["docfile"] = "a file name, as a string"
    if errors:
        raise InvalidValues(errors=errors)
    return Upload(
        None if text is None else text.encode("utf-8"),
        None if name is None else _file_name(name),
        _source_id(body.get("source_id")),
        "source_id" in body,
    )


def _file_name(raw: str) -> str:
    """The name's last path segment, without control characters, at most 255 long."""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(char for char in base if char.isprintable()).strip()
    return cleaned[:FILE_NAME_LENGTH] or DEFAULT_FILE_NAME


def _source_id(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not str(value).isdigit() or int(value) > MAX_INT:
        raise InvalidValues(errors={"source_id": "not an id"})
    return int(value)


def _checked_text(content: bytes) -> str:
    """The file's text, refused (400) when it is not a CSV document with a header."""
    text = parsing.decode(content)
    parsing.read_layout(text)
    return text


def _queue_connection() -> Redis:
    """Redis, answering: otherwise 503 before anything is written."""
    try:
        connection = redis_client()
        connection.ping()
    except (RedisError, RuntimeError) as exc:
        raise QueueUnavailable() from exc
    return connection


def _replace_content(session: Session, document_id: int, content: bytes) -> None:
    session.execute(
        update(DocumentFile).where(DocumentFile.document_id == document_id).values(content=content)
    )


def _mark_unqueued(session: Session, document_id: int) -> None:
    session.rollback()
    take_write_lock(session)
    session.execute(
        update(Document)
        .where(Document.id == document_id, Document.status == QUEUED)
        .values(status=FAILED, error="the document could not be queued: re-process it (PUT)")
    )
    session.commit()


def _remove(session: Session, document_id: int) -> None:
    """The document and everything made from it; its master datapoints stay."""
    take_write_lock(session)
    session.execute(
        update(DataPoint).where(DataPoint.document_id == document_id).values(document_id=None)
    )
    for model in (SourceDataPoint, DocumentReview, DocumentFile):
        session.execute(delete(model).where(model.document_id == document_id))
    session.execute(delete(Document).where(Document.id == document_id))
    session.commit()


def _document_envelope(session: Session, caller: Caller, document_id: int) -> Response:
    """The document as `GET /api/v2/document/<id>` shows it (staff: whoever's it is)."""
    resource = RESOURCES["document"]
    query = parse_query(resource, {})
    if caller.staff:
        query = dataclasses.replace(
            query, options=dataclasses.replace(query.options, show_all=True)
        )
    listing = reading.one(session, RESOURCES, resource, caller, query, document_id)
    return envelope(query.window, listing.total, listing.objects, query.parameters)
