"""Mail to a ticket's opener when staff reply or close it, sent by an RQ worker.

The request only enqueues a job on the queue `tickets` (after its transaction commits);
a worker runs it:

    rq worker --serializer rq.serializers.JSONSerializer tickets

with the service's environment (`SERVICE_SECRET`, `AUTH_SERVICE_URL`, the mail settings).
The job asks auth_service's user directory for the opener's address, so no address is
stored here or written to Redis, and a changed address is the one used. A failed
delivery (SMTP down, the directory unavailable) raises and is retried by RQ; a user who
is gone or has no address gets nothing. When Redis cannot take the job the request still
succeeds: the notice is logged as lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from servicekit.config import env, service_url
from servicekit.mail import Mailer
from servicekit.settings import load_settings
from servicekit.users import DirectoryUnavailable, UserDirectory
from tickets_service.settings import TicketsSettings

log = logging.getLogger(__name__)

QUEUE_NAME = "tickets"
JOB_FUNCTION = "tickets_service.notifications.send_notice"
RETRY_INTERVALS = [10, 60, 300]  # seconds between a failed delivery's attempts
FAILURE_TTL = 24 * 3600  # a job that failed for good is kept a day for inspection
SERVICE_NAME = "tickets"


@dataclass(frozen=True)
class Notice:
    """One message to a user, by publicId (the address is looked up when it is sent)."""

    recipient_id: str
    subject: str
    body: str


def mail_queue(connection: Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)


def enqueue(connection: Redis | None, notice: Notice) -> None:
    """Hand the notice to the worker; never raises (a lost notice is logged)."""
    if connection is None:
        log.warning("no REDIS_URL: a notice is not sent", extra={"to": notice.recipient_id})
        return
    try:
        mail_queue(connection).enqueue(
            JOB_FUNCTION,
            notice.recipient_id,
            notice.subject,
            notice.body,
            retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
            result_ttl=0,
            failure_ttl=FAILURE_TTL,
            description=f"mail to {notice.recipient_id}",
        )
    except RedisError as exc:
        log.error("a notice could not be queued", extra={"error": str(exc)})


# The worker's side


@dataclass(frozen=True)
class Sender:
    mailer: Mailer
    directory: UserDirectory


@cache
def sender() -> Sender:
    """The worker process's mailer and directory, from its environment (built once)."""
    secret = env("SERVICE_SECRET")
    if not secret:
        raise RuntimeError("SERVICE_SECRET is not set: the opener's address cannot be asked")
    directory = UserDirectory.for_service(
        SERVICE_NAME, secret, auth_url=env("AUTH_SERVICE_URL") or service_url("auth")
    )
    return Sender(Mailer.from_settings(load_settings(TicketsSettings)), directory)


def send_notice(recipient_id: str, subject: str, body: str) -> None:
    """The job: mail the user now. Raises when it must be tried again."""
    current = sender()
    try:
        found = current.directory.lookup(public_ids=[recipient_id])
    except DirectoryUnavailable:
        log.warning("the user directory is unavailable: the notice waits for it")
        raise
    user = found.by_public_id.get(recipient_id)
    if user is None or not user.is_active or not user.email:
        log.info("notice dropped: no active user with an address", extra={"to": recipient_id})
        return
    current.mailer.deliver(current.mailer.message(user.email, subject, body))
    log.info("notice sent", extra={"to": recipient_id})
