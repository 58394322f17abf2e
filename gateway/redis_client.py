"""The gateway's Redis client for its one round trip per request (revocation marks and
rate-limit counters): MGET, or a pipeline of INCR, EXPIRE, GET and MGET.

redis-py spends most of that round trip's CPU around the commands (retry and
observability wrappers, a poll before every command, RESP3 parsing); this client
speaks RESP2 over pooled sockets and does only what the guard asks. It serves
`redis://` and `unix://` URLs (with a password, user and database); for any other URL
(TLS, options in the query string) the gateway uses redis-py. Errors are redis-py's, so
the guard's fail-closed and fail-open rules hold either way.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import redis

Command = tuple[bytes | str, ...]


class RedisClient(Protocol):
    """What the guard needs of a Redis client: satisfied by `Resp2Client` and redis-py."""

    def mget(self, keys: Any, *args: Any) -> Any: ...
    def pipeline(self, transaction: bool = ...) -> Any: ...


def open_redis_client(url: str, timeout: float = 1.0) -> RedisClient:
    """`Resp2Client` when it can serve `url`, else redis-py."""
    if Resp2Client.serves(url):
        return Resp2Client(url, timeout)
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def encode(command: Command) -> bytes:
    parts = [b"*%d\r\n" % len(command)]
    for argument in command:
        data = argument.encode() if isinstance(argument, str) else argument
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class _Connection:
    """One socket to the server and the bytes read from it but not parsed yet."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def call(self, commands: list[Command]) -> list[Any]:
        self.sock.sendall(b"".join(encode(command) for command in commands))
        return [self.reply() for _ in commands]

    def reply(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._exactly(size + 2)[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.reply() for _ in range(count)]
        if kind == b"+":
            return bytes(rest)
        if kind == b"-":
            return redis.ResponseError(rest.decode(errors="replace"))
        raise redis.ConnectionError(f"unexpected reply {line[:40]!r}")

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise redis.ConnectionError("connection closed by the server")
        self.buffer += data


class Resp2Pipeline:
    """Commands queued by the guard, sent together by `execute`."""

    def __init__(self, client: Resp2Client) -> None:
        self.client = client
        self.commands: list[Command] = []

    def mget(self, *keys: str) -> Resp2Pipeline:
        self.commands.append(("MGET", *keys))
        return self

    def incr(self, name: str) -> Resp2Pipeline:
        self.commands.append(("INCR", name))
        return self

    def expire(self, name: str, time: int) -> Resp2Pipeline:
        self.commands.append(("EXPIRE", name, str(time)))
        return self

    def get(self, name: str) -> Resp2Pipeline:
        self.commands.append(("GET", name))
        return self

    def execute(self) -> list[Any]:
        return self.client.call(self.commands)


class Resp2Client:
    """Pooled RESP2 connections to one Redis server (most recently used first)."""

    def __init__(self, url: str, timeout: float = 1.0) -> None:
        parts = urlsplit(url)
        self.timeout = timeout
        self.unix_path = parts.path if parts.scheme == "unix" else None
        self.address = (parts.hostname or "localhost", parts.port or 6379)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        query_db = parse_qs(parts.query).get("db", [""])[0]
        path_db = parts.path.strip("/") if parts.scheme == "redis" else ""
        self.db = int(query_db or path_db or 0)
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    @staticmethod
    def serves(url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return set(parse_qs(parts.query)) <= {"db"}
        return parts.scheme == "redis" and not parts.query

    def mget(self, keys: Any, *args: Any) -> list[Any]:
        names = [keys, *args] if isinstance(keys, str) else [*keys, *args]
        return self.call([("MGET", *names)])[0]  # type: ignore[no-any-return]

    def pipeline(self, transaction: bool = False) -> Resp2Pipeline:
        return Resp2Pipeline(self)

    def call(self, commands: list[Command]) -> list[Any]:
        """Send the commands at once and read their replies; one retry on a fresh
        connection when a pooled one turns out to be closed."""
        for attempt in range(2):
            connection, reused = self._acquire()
            try:
                replies = connection.call(commands)
            except (OSError, redis.ConnectionError) as exc:
                connection.sock.close()
                if reused and attempt == 0 and not isinstance(exc, TimeoutError):
                    continue
                raise _as_redis_error(exc) from exc
            self._release(connection)
            errors = [reply for reply in replies if isinstance(reply, redis.ResponseError)]
            if errors:
                raise errors[0]
            return replies
        raise AssertionError("unreachable")

    def _acquire(self) -> tuple[_Connection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        try:
            return self._connect(), False
        except OSError as exc:
            raise _as_redis_error(exc) from exc

    def _release(self, connection: _Connection) -> None:
        if connection.buffer:  # a reply that was not read: the stream is out of step
            connection.sock.close()
            return
        with self._lock:
            self._idle.append(connection)

    def _connect(self) -> _Connection:
        if self.unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.unix_path)
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection(self.address, timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(sock)
        try:
            self._prepare(connection)
        except BaseException:
            sock.close()
            raise
        return connection

    def _prepare(self, connection: _Connection) -> None:
        """Authenticate and pick the database, as the URL says."""
        commands: list[Command] = []
        if self.password is not None:
            credentials = (self.username, self.password) if self.username else (self.password,)
            commands.append(("AUTH", *credentials))
        if self.db:
            commands.append(("SELECT", str(self.db)))
        if not commands:
            return
        for reply in connection.call(commands):
            if isinstance(reply, redis.ResponseError):
                raise redis.AuthenticationError(str(reply))


def _as_redis_error(exc: BaseException) -> redis.RedisError:
    if isinstance(exc, redis.RedisError):
        return exc
    if isinstance(exc, TimeoutError):
        return redis.TimeoutError(str(exc) or "timed out")
    return redis.ConnectionError(str(exc) or type(exc).__name__)
