"""Commands for operators: the users copy, and documents.

    flask --app datapoints_service backfill-users   # upsert every user the directory lists
    flask --app datapoints_service follow-users     # the consumer process (below)
    flask --app datapoints_service process-document 12 [--force]  # process it here, now

`follow-users` is the `datapoints_users` process: when the copy is empty it is first
filled from auth_service's directory (retried until the directory answers), then the
user lifecycle stream is consumed as by

    python -m servicekit.streams datapoints_service.lifecycle:handle_entry \\
        --group datapoints --app datapoints_service

(any further arguments, e.g. `--consumer`, are passed on). API processes never backfill.

`process-document` is for a document whose job was lost (Redis flushed, the worker killed
mid-document): it runs the job's processing in this process. A document still shown as
`processing` is taken over only with `--force` (when its worker is known to be gone).
"""

from __future__ import annotations

import logging
import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from datapoints_service.context import datapoints_context
from datapoints_service.documents import processing
from datapoints_service.lifecycle import GROUP, backfill_users, copy_is_empty
from datapoints_service.locking import take_write_lock
from datapoints_service.models import PROCESSING, QUEUED, Document, db
from servicekit.streams import main as consume_stream
from servicekit.streams import stop_on_signals
from servicekit.users import DirectoryUnavailable

log = logging.getLogger(__name__)

HANDLER = "datapoints_service.lifecycle:handle_entry"
BACKFILL_RETRY_PAUSE = 2.0  # seconds between attempts while auth_service does not answer


@click.command("backfill-users")
@with_appcontext
def backfill_users_command() -> None:
    """Upsert every user auth_service's directory lists into the users copy (by
    publicId; safe to repeat, and while the consumer runs)."""
    directory = datapoints_context(current_app).directory
    if directory is None:
        raise click.ClickException("SERVICE_SECRET is not set: there is no directory to list")
    try:
        written = backfill_users(db.session(), directory)
    except DirectoryUnavailable as exc:
        raise click.ClickException(f"the user directory is unavailable: {exc}") from exc
    click.echo(f"{written} users written to the users copy")


@click.command(
    "follow-users", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.argument("consumer_options", nargs=-1, type=click.UNPROCESSED)
@with_appcontext
def follow_users_command(consumer_options: tuple[str, ...]) -> None:
    """Backfill an empty users copy, then consume the user lifecycle stream until SIGTERM."""
    stop = threading.Event()
    stop_on_signals(stop)
    if not backfill_when_empty(current_app, stop) or stop.is_set():
        return  # stopped before the stream was read
    arguments = [HANDLER, "--group", GROUP, "--app", "datapoints_service", *consumer_options]
    raise SystemExit(consume_stream(arguments))


def backfill_when_empty(app: Flask, stop: threading.Event) -> bool:
    """Fill the copy from the directory if it is empty, retrying until it is done (True)
    or `stop` is set (False). Without a directory there is nothing to fill it from."""
    directory = datapoints_context(app).directory
    while not stop.is_set():
        try:
            if not copy_is_empty(db.session()):
                return True
            if directory is None:
                log.warning("SERVICE_SECRET is not set: the empty users copy is not backfilled")
                return True
            written = backfill_users(db.session(), directory)
            log.info("users copy backfilled", extra={"users": written})
            return True
        except (DirectoryUnavailable, SQLAlchemyError) as exc:
            # SQLAlchemyError: e.g. another replica's backfill won the race (unique publicId).
            db.session.rollback()
            log.warning("users copy backfill failed: retrying", extra={"error": str(exc)})
        stop.wait(BACKFILL_RETRY_PAUSE)
    return False


@click.command("process-document")
@click.argument("document_id", type=click.IntRange(min=1))
@click.option("--force", is_flag=True, help="take over a document shown as processing")
@with_appcontext
def process_document_command(document_id: int, force: bool) -> None:
    """Process document DOCUMENT_ID now, in this process (as its RQ job would)."""
    session = db.session()
    take_write_lock(session)
    status = session.scalar(select(Document.status).where(Document.id == document_id))
    if status is None:
        raise click.ClickException(f"there is no document {document_id}")
    if status == PROCESSING:
        if not force:
            raise click.ClickException(
                f"document {document_id} is being processed; --force if its worker is gone"
            )
        session.execute(update(Document).where(Document.id == document_id).values(status=QUEUED))
    session.commit()
    chunk_rows = datapoints_context(current_app).settings.document_chunk_rows
    processing.process(session, document_id, chunk_rows)
    status = session.scalar(select(Document.status).where(Document.id == document_id))
    click.echo(f"document {document_id}: {status}")


def register_commands(app: Flask) -> None:
    for command in (backfill_users_command, follow_users_command, process_document_command):
        app.cli.add_command(command)
