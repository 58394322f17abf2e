"""Outbound calls, and the guard that keeps them off internal addresses (SSRF).

A call's URL is `http` or `https`. Its host is resolved here and every address it resolves to
must be public: not private, loopback, link-local (169.254.0.0/16: cloud metadata), CGNAT
(100.64.0.0/10), multicast, reserved or unspecified, also when hidden in an IPv6 form
(IPv4-mapped, 6to4, Teredo, NAT64). A host and port listed in `SCHEDULER_ALLOWED_HOSTS` is
exempt; a host listed without a port is exempt on its scheme's default port only (80, 443).
The connection then goes to the vetted address itself (the name is only sent as `Host`
and for TLS), so a DNS answer that changes between the check and the connection cannot
redirect the call. Redirects are not followed: a 3xx is recorded as it is.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import certifi
import urllib3
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

URL_MAX_LENGTH = 2048
USER_AGENT = "flotilla-scheduler/1.0"
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
READ_CHUNK = 64 * 1024
ERROR_MAX_LENGTH = 500
POOLS_KEPT = 64
DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeTarget(Exception):
    """A URL the scheduler will not call; the message says why."""


class UnresolvableHost(UnsafeTarget):
    """No address for the host: refused when scheduling, retried at call time (DNS hiccup)."""


@dataclass(frozen=True)
class Destination:
    """Where a call goes, from its URL: what to connect to and what to send as `Host`."""

    scheme: str
    host: str  # lower-case name or IP literal, without brackets
    port: int
    path: str  # path and query, as sent in the request line
    host_header: str  # what `Host:` says, the port only when it is not the default

    @property
    def is_ip_literal(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class AllowedTarget:
    """A host exempt from the address checks on one port; without a port, on the default
    port of the URL's scheme, as a URL naming no port means."""

    host: str  # as `Destination.host` names it
    port: int | None = None

    def admits(self, destination: Destination) -> bool:
        if destination.host != self.host:
            return False
        if self.port is None:
            return destination.port == DEFAULT_PORTS[destination.scheme]
        return destination.port == self.port


def allowed_target(entry: str) -> AllowedTarget:
    """An allow-list entry (`host`, `host:port`, `[v6]:port`, bare `v6`); ValueError says why
    it is not one."""
    text = entry.strip()
    if text.count(":") > 1 and not text.startswith("["):
        text = f"[{text}]"  # a bare IPv6 address; with a port it needs its brackets
    if not text or any(mark in text for mark in "/?#@\\"):
        raise ValueError(f"{entry.strip()!r} is not a host or host:port")
    try:
        destination = parse_destination(f"http://{text}/")
        port = urlsplit(f"http://{text}/").port
    except (UnsafeTarget, ValueError) as exc:
        raise ValueError(f"{entry.strip()!r} is not a host or host:port") from exc
    return AllowedTarget(destination.host, port)


@dataclass(frozen=True)
class TargetPolicy:
    """What a call may reach (hosts exempt from the address checks), and its limits."""

    allowed: frozenset[AllowedTarget] = frozenset()
    connect_timeout: float = 5.0
    total_timeout: float = 30.0
    max_response_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class OutboundRequest:
    """The HTTP request of one call, as its worker sends it."""

    call_id: int
    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave: a status code, or an error; and how long it took."""

    started_at: float
    duration_ms: float
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds the target asked us to wait
    host: str = ""
    unsafe: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        """Connection failures, timeouts, 5xx and 429 may pass on a later try."""
        if self.unsafe:
            return False
        if self.status_code is None:
            return True
        return self.status_code == 429 or self.status_code >= 500


def parse_destination(url: str) -> Destination:
    """The destination of a call's URL; UnsafeTarget says why a URL cannot be called."""
    if not isinstance(url, str) or not url:
        raise UnsafeTarget("must be an http or https URL")
    if len(url) > URL_MAX_LENGTH:
        raise UnsafeTarget(f"must be at most {URL_MAX_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UnsafeTarget("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget("is not a valid URL") from exc
    scheme = parts.scheme.lower()
    if port == 0:
        raise UnsafeTarget("has an invalid port")
    if scheme not in ("http", "https"):
        raise UnsafeTarget("only http and https URLs can be called")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("credentials in the URL are not supported: send them as headers")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeTarget("has no host")
    try:
        host = host.encode("idna").decode("ascii").lower() if not _is_ip(host) else host
    except UnicodeError as exc:
        raise UnsafeTarget("has an invalid host name") from exc
    default_port = DEFAULT_PORTS[scheme]
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port in (None, default_port) else f"{shown}:{port}"
    return Destination(scheme, host, port or default_port, path, host_header)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def forbidden_reason(address: IPAddress) -> str | None:
    """Why an address must not be called, or None when it is a public one."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = forbidden_reason(embedded)
        return f"{reason} (embedded in {address})" if reason else None
    checks = (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_unspecified, "unspecified"),
        (address.version == 4 and address in CGNAT, "shared (CGNAT)"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for failed, reason in checks if failed), None)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if address.version != 6:
        return None
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def resolve(destination: Destination) -> list[str]:
    """Every address the host resolves to (IPv4 first), without duplicates."""
    try:
        infos = socket.getaddrinfo(destination.host, destination.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"cannot resolve host {destination.host!r}") from exc
    addresses: list[str] = []
    for family, *_rest, sockaddr in sorted(infos, key=lambda info: info[0] != socket.AF_INET):
        address = str(sockaddr[0]).split("%", 1)[0] if family == socket.AF_INET6 else sockaddr[0]
        if address not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise UnresolvableHost(f"cannot resolve host {destination.host!r}")
    return addresses


def vetted_addresses(destination: Destination, allowed: frozenset[AllowedTarget]) -> list[str]:
    """The addresses to connect to; UnsafeTarget when any of them is not public."""
    addresses = resolve(destination)
    if any(entry.admits(destination) for entry in allowed):
        return addresses
    for address in addresses:
        reason = forbidden_reason(ipaddress.ip_address(address))
        if reason is None:
            continue
        if destination.is_ip_literal:
            raise UnsafeTarget(f"{address} is a {reason} address")
        raise UnsafeTarget(f"{destination.host} resolves to {address}, a {reason} address")
    return addresses


def check_url(url: str, allowed: frozenset[AllowedTarget]) -> Destination:
    """Scheduling-time check: a callable URL whose host resolves to public addresses."""
    destination = parse_destination(url)
    vetted_addresses(destination, allowed)
    return destination


class ConnectionPools:
    """Keep-alive connections per vetted address (and name), the least recently used dropped."""

    def __init__(self, size: int, kept: int = POOLS_KEPT) -> None:
        self.size = size
        self.kept = kept
        self._pools: OrderedDict[tuple[str, str, int, str], HTTPConnectionPool] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, destination: Destination, address: str) -> HTTPConnectionPool:
        key = (destination.scheme, address, destination.port, destination.host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            pool = self._new_pool(destination, address)
            self._pools[key] = pool
            while len(self._pools) > self.kept:
                _key, evicted = self._pools.popitem(last=False)
                evicted.close()
            return pool

    def _new_pool(self, destination: Destination, address: str) -> HTTPConnectionPool:
        if destination.scheme == "http":
            return HTTPConnectionPool(address, destination.port, maxsize=self.size, block=False)
        name = None if destination.is_ip_literal else destination.host
        return HTTPSConnectionPool(
            address,
            destination.port,
            maxsize=self.size,
            block=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=name,
            assert_hostname=name or address,
        )

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


def perform(
    request: OutboundRequest, policy: TargetPolicy, pools: ConnectionPools, started_at: float
) -> Outcome:
    """One attempt of `request`: never raises, the outcome says what happened."""
    began = time.monotonic()
    host = ""
    try:
        destination = parse_destination(request.url)
        host = destination.host_header
        addresses = vetted_addresses(destination, policy.allowed)
        status, retry_after = _exchange(request, destination, addresses, policy, pools, began)
    except UnresolvableHost as exc:
        return _outcome(started_at, began, host, error=str(exc))
    except UnsafeTarget as exc:
        return _outcome(started_at, began, host, error=f"refused: {exc}", unsafe=True)
    except _CallError as exc:
        return _outcome(started_at, began, host, error=str(exc))
    except (UnicodeError, ValueError):
        # http.client refuses the request before sending it (a header it cannot encode,
        # from a call scheduled before headers were checked): no later try will do better.
        error = "the request could not be sent: a header holds characters HTTP cannot carry"
        return _outcome(started_at, began, host, error=error, unsafe=True)
    return _outcome(started_at, began, host, status_code=status, retry_after=retry_after)


def _outcome(started_at: float, began: float, host: str, **values: object) -> Outcome:
    duration_ms = round((time.monotonic() - began) * 1000, 2)
    error = values.pop("error", None)
    if isinstance(error, str):
        values["error"] = error[:ERROR_MAX_LENGTH]
    return Outcome(started_at=started_at, duration_ms=duration_ms, host=host, **values)  # type: ignore[arg-type]


class _CallError(Exception):
    pass


def _exchange(
    request: OutboundRequest,
    destination: Destination,
    addresses: list[str],
    policy: TargetPolicy,
    pools: ConnectionPools,
    began: float,
) -> tuple[int, float | None]:
    """Send to the first address that accepts a connection; read the answer, capped."""
    body = request.body.encode("utf-8") if request.body is not None else None
    headers = {
        "User-Agent": USER_AGENT,
        **request.headers,
        "Host": destination.host_header,
        "Idempotency-Key": str(request.call_id),
    }
    last_error = "no address to connect to"
    for address in addresses:
        remaining = policy.total_timeout - (time.monotonic() - began)
        if remaining <= 0:
            break
        timeout = urllib3.Timeout(connect=min(policy.connect_timeout, remaining), read=remaining)
        try:
            response = pools.get(destination, address).urlopen(
                request.method,
                destination.path,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=timeout,
                preload_content=False,
                release_conn=False,
            )
        except (NewConnectionError, ConnectTimeoutError) as exc:
            last_error = _describe(exc, policy)
            continue
        except HTTPError as exc:
            raise _CallError(_describe(exc, policy)) from exc
        _read_capped(response, policy, began)
        return response.status, _retry_after(response.headers.get("Retry-After"))
    raise _CallError(last_error)


def _read_capped(response: urllib3.BaseHTTPResponse, policy: TargetPolicy, began: float) -> None:
    """Read the body up to the cap; a longer one closes the connection instead."""
    received = 0
    try:
        while True:
            if time.monotonic() - began > policy.total_timeout:
                raise _CallError(f"no complete answer within {policy.total_timeout:g} s")
            chunk = response.read(READ_CHUNK)
            if not chunk:
                response.release_conn()
                return
            received += len(chunk)
            if received > policy.max_response_bytes:
                response.close()
                response.release_conn()
                return
    except (ReadTimeoutError, ProtocolError, SSLError) as exc:
        response.close()
        response.release_conn()
        raise _CallError(_describe(exc, policy)) from exc
    except _CallError:
        response.close()
        response.release_conn()
        raise


def _describe(error: Exception, policy: TargetPolicy) -> str:
    # NewConnectionError is a ConnectTimeoutError too: ask the narrower question first.
    if isinstance(error, NewConnectionError):
        detail = str(error).rsplit(": ", 1)[-1] if ": " in str(error) else "connection failed"
        return f"connection failed: {detail}"
    if isinstance(error, ConnectTimeoutError):
        return f"connection timed out after {policy.connect_timeout:g} s"
    if isinstance(error, ReadTimeoutError):
        return f"no answer within {policy.total_timeout:g} s"
    if isinstance(error, SSLError):
        return f"TLS error: {error}"
    if isinstance(error, ProtocolError):
        return f"connection broken: {error}"
    return f"the call failed: {str(error) or 'the connection was lost'}"


def _retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date); None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))
