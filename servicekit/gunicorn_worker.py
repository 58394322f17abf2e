"""gunicorn's gthread worker with every client bounded in time, and fewer hand-offs.

The stock gthread worker hands a connection to a thread as soon as it has bytes to read,
and the thread then reads in blocking mode: a client that sends half a request head, or
declares a body and stops half-way, holds that thread for as long as it likes, and a
handful of such clients take every thread of the worker. Closing a connection also waits
(up to 2 s) for the client's FIN on the thread that runs the poller. This worker:

- gathers each request head, and a small body of declared length (the whole request up to
  `PRE_READ_LIMIT`), on the worker's poller: no thread is held while a client is slow to
  send them, and one that has not sent them within the client timeout is disconnected;
- sets the client timeout on the socket before a thread reads or writes it: a larger body
  that stalls, or a client that stops reading its response, makes that read or write
  raise after the timeout instead of holding the thread for ever;
- closes connections with a lingering close run by the poller, which never waits;
- lets the thread that answered a kept-alive client take that client's next request when
  it arrives within a millisecond and no other connection waits for a thread, sparing
  two hand-offs between threads (poller, then thread) per request.

Idle keep-alive connections stay on the poller, as in gunicorn, for `keepalive` seconds.
The client timeout is `GUNICORN_CLIENT_TIMEOUT` seconds (30 by default). HTTP/1.1 only:
the suite's gunicorn settings do not enable HTTP/2.
"""

from __future__ import annotations

import errno
import os
import re
import select
import selectors
import socket
import threading
import time
from concurrent.futures import Future
from functools import partial
from typing import TYPE_CHECKING, Any

from gunicorn import util
from gunicorn.http.parser import Parser
from gunicorn.workers.gthread import TConn, ThreadWorker

if TYPE_CHECKING:
    from gunicorn._types import _AddressType
    from gunicorn.config import Config
    from gunicorn.http import Request
    from gunicorn.http.unreader import Unreader

# The gunicorn release whose gthread internals this worker was written against and tested
# with; tests/servicekit/test_gunicorn_worker_version.py fails on any other release, so
# that an upgrade comes with a review of the overridden internals.
WRITTEN_FOR_GUNICORN = "27.0.1"
CLIENT_TIMEOUT_VARIABLE = "GUNICORN_CLIENT_TIMEOUT"
DEFAULT_CLIENT_TIMEOUT = 30.0
# Requests up to this size (head and body) are read whole before a thread serves them;
# it also bounds what the poller buffers per connection.
PRE_READ_LIMIT = 64 * 1024
LINGER_SECONDS = 2.0
LINGER_DRAIN_LIMIT = 64 * 1024
NOTIFY_INTERVAL = 1.0
# How long a thread that just answered waits for the same client's next request, when no
# other connection is waiting for a thread.
NEXT_REQUEST_WAIT = 0.001
_READY, _PARTIAL, _GATHER = object(), object(), object()
_ACCEPT_AGAIN = frozenset({errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK})
# A body framed by chunks, or sent only after "100 Continue", is left to the thread.
_BODY_NOT_PRE_READ = re.compile(rb"(?im)^(?:transfer-encoding|expect)[ \t]*:")
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length[ \t]*:[ \t]*([0-9]{1,10})[ \t]*\r?$")


def client_timeout_from_environment() -> float:
    return float(os.environ.get(CLIENT_TIMEOUT_VARIABLE, DEFAULT_CLIENT_TIMEOUT))


def request_is_ready(data: bytes | bytearray) -> bool:
    """Whether a thread can take the request in `data` without waiting on the client.

    True once the head is complete, with its body when that is of declared length and
    fits under PRE_READ_LIMIT. Also true for what gunicorn refuses at once (a bare LF) or
    what is too large to buffer here: the thread reads on, bounded by the client timeout.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return len(data) >= PRE_READ_LIMIT or data.count(b"\n") != data.count(b"\r\n")
    head_size = end + 4
    return len(data) >= head_size + _small_body_length(data[:end], PRE_READ_LIMIT - head_size)


def _small_body_length(head: bytes | bytearray, room: int) -> int:
    if head.startswith((b"GET ", b"HEAD ")):
        return 0  # a body there would be unusual: if one comes, the thread reads it
    if _BODY_NOT_PRE_READ.search(head):
        return 0
    lengths = _CONTENT_LENGTH.findall(head)
    if len(lengths) != 1:
        return 0  # no body, or an invalid head that gunicorn will refuse
    length = int(lengths[0])
    return length if length <= room else 0


def _readable_within(sock: socket.socket, seconds: float) -> bool:
    poller = select.poll()  # not select(): descriptors may be above FD_SETSIZE
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(seconds * 1000))


def _bounded(conn: TConn) -> BoundedConnection:
    """`conn` as the worker made it: BoundedThreadWorker.accept makes every connection."""
    if not isinstance(conn, BoundedConnection):
        raise TypeError(f"not a connection of this worker: {conn!r}")
    return conn


class BoundedConnection(TConn):
    """A client connection: bytes read on the poller wait here for the request parser."""

    def __init__(
        self,
        cfg: Config,
        sock: socket.socket,
        client: _AddressType,
        server: _AddressType,
        worker: BoundedThreadWorker,
    ) -> None:
        super().__init__(cfg, sock, client, server)
        self.worker = worker
        self.received = bytearray()
        self.drained = 0

    def init(self) -> None:
        """Called on a thread each time it takes the connection, just after gunicorn has
        made the socket blocking (which means: wait for ever)."""
        super().init()
        self.sock.settimeout(self.worker.client_timeout)
        if self.received:
            unreader = self.unreader()
            unreader.unread(unreader.take_buffered() + bytes(self.received))
            self.received.clear()

    def unreader(self) -> Unreader:
        """The HTTP/1.x parser's buffer of bytes read ahead (init has made the parser)."""
        if not isinstance(self.parser, Parser):
            raise TypeError(f"no HTTP/1.x parser on {self!r}")
        return self.parser.unreader

    def close(self, graceful: bool = False) -> None:
        if graceful:
            self.worker.linger(self)
        else:
            super().close()


class BoundedThreadWorker(ThreadWorker):
    """gthread, with request heads read on the poller and a timeout on every client."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_timeout = client_timeout_from_environment()
        # Deadlines are now + a constant, so insertion order is deadline order.
        self.reading: dict[BoundedConnection, float] = {}
        self.lingering: dict[BoundedConnection, float] = {}
        self._next_notify = 0.0
        self._submitted = 0  # connections handed to the thread pool (by the main thread)
        self._started = 0  # ... and taken by a thread (by the threads: under a lock)
        self._started_lock = threading.Lock()

    def notify(self) -> None:
        """Tell the arbiter this worker is alive. gunicorn does it on every turn of its
        loop (twice a request when busy), a file-system call each time; once a second (or
        a quarter of the timeout, if that is shorter) is plenty."""
        now = time.monotonic()
        if now >= self._next_notify:
            self._next_notify = now + min(NOTIFY_INTERVAL, self.timeout / 4)
            super().notify()

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, address = listener.accept()
        except OSError as exc:
            if exc.errno in _ACCEPT_AGAIN:
                return
            raise
        self.nr_conns += 1
        conn = BoundedConnection(self.cfg, sock, address, listener.getsockname(), self)
        self.reading[conn] = time.monotonic() + self.client_timeout
        self.poller.register(sock, selectors.EVENT_READ, partial(self.on_request_bytes, conn))

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection has the start of its next request: gather the rest."""
        self.keepalived_conns.remove(conn)
        bounded = _bounded(conn)
        self.reading[bounded] = time.monotonic() + self.client_timeout
        self.poller.modify(client, selectors.EVENT_READ, partial(self.on_request_bytes, bounded))
        self.on_request_bytes(bounded, client)

    def on_request_bytes(self, conn: BoundedConnection, sock: socket.socket) -> None:
        if self.cfg.is_ssl:  # TLS records: the thread decrypts them
            self._dispatch(conn)
            return
        try:
            data = sock.recv(PRE_READ_LIMIT - len(conn.received))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.received += data
        if request_is_ready(conn.received):
            self._dispatch(conn)

    def _dispatch(self, conn: BoundedConnection) -> None:
        del self.reading[conn]
        self.poller.unregister(conn.sock)
        conn.data_ready = True  # gunicorn must not wait for data again on the thread
        self.enqueue_req(conn)

    def _drop(self, conn: BoundedConnection) -> None:
        """The client went away, or did not send its request in time."""
        del self.reading[conn]
        self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def linger(self, conn: BoundedConnection) -> None:
        """Close after the response: send FIN, then read (and drop) what the client still
        sends until it closes too, so the kernel does not answer that data with a reset
        that could cut the response short. The poller does the reading; at most
        LINGER_SECONDS."""
        sock = conn.sock
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
        except OSError:
            util.close(sock)
            return
        self.lingering[conn] = time.monotonic() + LINGER_SECONDS
        self.poller.register(sock, selectors.EVENT_READ, partial(self._drain, conn))

    def _drain(self, conn: BoundedConnection, sock: socket.socket) -> None:
        try:
            data = sock.recv(LINGER_DRAIN_LIMIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.drained += len(data)
        if not data or conn.drained >= LINGER_DRAIN_LIMIT:
            self._end_linger(conn)

    def _end_linger(self, conn: BoundedConnection) -> None:
        del self.lingering[conn]
        self.poller.unregister(conn.sock)
        util.close(conn.sock)

    def murder_pending(self) -> None:
        """Called by gunicorn's loop on every turn: expire slow requests and lingerers."""
        super().murder_pending()
        self._expire(time.monotonic())

    def murder_keepalived(self, force: bool = False) -> None:
        # types-gunicorn 26.2 predates the `force` parameter of gunicorn 27.
        super().murder_keepalived(force)  # type: ignore[call-arg]
        if force:
            self._expire(float("inf"))

    def _expire(self, now: float) -> None:
        while self.reading:
            conn, deadline = next(iter(self.reading.items()))
            if deadline > now:
                break
            self._drop(conn)
        while self.lingering:
            conn, deadline = next(iter(self.lingering.items()))
            if deadline > now:
                break
            self._end_linger(conn)

    def enqueue_req(self, conn: TConn) -> None:
        self._submitted += 1
        super().enqueue_req(conn)

    # The stubs type gthread's handle as returning a bool; gunicorn's own also returns a
    # sentinel (_DEFER), and this one may return _GATHER: finish_request takes either.
    def handle(self, conn: TConn) -> object:  # type: ignore[override]
        """gunicorn's handling, then, while the client is quick and no other connection
        waits for a thread, its next request on this same thread: a kept-alive client
        then does not pay two hand-offs between threads per request."""
        with self._started_lock:
            self._started += 1
        result = super().handle(conn)
        while result is True:
            following = self._next_request(_bounded(conn))
            if following is _PARTIAL:
                return _GATHER  # the rest is gathered on the poller
            if following is not _READY:
                break
            result = super().handle(conn)
        return result

    def _next_request(self, conn: BoundedConnection) -> object | None:
        """_READY or _PARTIAL when the client's next request has started to arrive (read
        ahead with the last one, or within NEXT_REQUEST_WAIT); None to leave the
        connection to the poller as usual."""
        if not self.alive or self.cfg.is_ssl:
            return None
        # Pipelined bytes already read: gunicorn would hand them straight to a thread,
        # which would wait on the client for the rest of an incomplete head.
        read_ahead = conn.unreader().take_buffered()
        if read_ahead:
            conn.received += read_ahead
            return _READY if request_is_ready(conn.received) else _PARTIAL
        if self._submitted != self._started or not _readable_within(conn.sock, NEXT_REQUEST_WAIT):
            return None
        try:
            data = conn.sock.recv(PRE_READ_LIMIT)
        except OSError:
            return None
        if not data:
            return None  # closed: the poller sees it too, and closes its side
        conn.received += data
        return _READY if request_is_ready(conn.received) else _PARTIAL

    def finish_request(self, conn: TConn, fs: Future[Any]) -> None:
        """Called on the worker's loop when a thread has handled `conn`; `fs` holds what
        handle returned (a bool to gunicorn's stubs, a sentinel at times: see handle)."""
        if not fs.cancelled() and fs.exception() is None and fs.result() is _GATHER:
            # The start of the next request arrived on the thread: gather the rest here.
            bounded = _bounded(conn)
            bounded.sock.setblocking(False)
            self.reading[bounded] = time.monotonic() + self.client_timeout
            self.poller.register(
                bounded.sock, selectors.EVENT_READ, partial(self.on_request_bytes, bounded)
            )
            return
        super().finish_request(conn, fs)

    def handle_request(self, req: Request, conn: TConn) -> bool:
        try:
            return super().handle_request(req, conn)
        except TimeoutError:
            # The client stopped reading its response (or sending its body) for the
            # client timeout; gunicorn would log this as a socket error.
            self.log.info("Closing a stalled connection from %s", conn.client)
            return False
