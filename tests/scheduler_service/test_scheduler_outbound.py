"""The outbound call and its guard, against real servers on loopback: which addresses are
refused, what is sent, what is not followed, and how much is read."""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import time
from pathlib import Path

import pytest

from devstack.stack import DEV_CALL_TARGET_PORT, Stack
from scheduler_service.calllog import CallLog, outcome_message
from scheduler_service.outbound import (
    AllowedTarget,
    ConnectionPools,
    OutboundRequest,
    Outcome,
    TargetPolicy,
    UnsafeTarget,
    _retry_after,
    allowed_target,
    check_url,
    forbidden_reason,
    parse_destination,
    perform,
)
from servicekit.testing import serve_wsgi
from tests.scheduler_service.scheduler_helpers import TargetServer

LOCAL = TargetPolicy(connect_timeout=2, total_timeout=3)


def allowing(url: str, policy: TargetPolicy = LOCAL) -> TargetPolicy:
    """`policy` with the host and port of `url` (a loopback server) exempt."""
    return dataclasses.replace(policy, allowed=frozenset({allowed_target(url[len("http://") :])}))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.254", "shared (CGNAT)"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:10.0.0.1", "private (embedded in ::ffff:a00:1)"),
        ("::ffff:127.0.0.1", "loopback (embedded in ::ffff:7f00:1)"),
        ("64:ff9b::a9fe:a9fe", "link-local (embedded in 64:ff9b::a9fe:a9fe)"),
        ("2002:a00:1::", "private (embedded in 2002:a00:1::)"),
    ],
)
def test_internal_addresses_are_forbidden(address: str, reason: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.org/", "only http and https"),
        ("http://", "has no host"),
        ("http://a b/", "spaces"),
        ("http://example.org:99999/", "not a valid URL"),
        ("http://example.org:0/", "invalid port"),
        ("https://user:pw@example.org/", "credentials"),
        ("http://" + "a" * 2050, "at most 2048"),
    ],
)
def test_malformed_urls(url: str, message: str) -> None:
    with pytest.raises(UnsafeTarget, match=message):
        parse_destination(url)


def test_destinations_keep_their_host_for_the_host_header() -> None:
    destination = parse_destination("HTTPS://Example.ORG.:8443/a/b?c=d")
    assert (destination.scheme, destination.host, destination.port) == (
        "https",
        "example.org",
        8443,
    )
    assert destination.path == "/a/b?c=d" and destination.host_header == "example.org:8443"
    assert parse_destination("http://[::1]:80").host_header == "[::1]"


def test_an_allowed_host_is_exempt_on_its_port_only() -> None:
    localhost_1 = frozenset({AllowedTarget("localhost", 1)})
    assert check_url("http://localhost:1/", localhost_1).host == "localhost"
    with pytest.raises(UnsafeTarget, match=r"localhost resolves to 127\.0\.0\.1"):
        check_url("http://localhost:2/", localhost_1)
    with pytest.raises(UnsafeTarget, match=r"localhost resolves to 127\.0\.0\.1"):
        check_url("http://localhost:1/", frozenset({AllowedTarget("127.0.0.1", 1)}))
    with pytest.raises(UnsafeTarget, match="cannot resolve host"):
        check_url("http://no-such-host.invalid/", frozenset())


@pytest.mark.parametrize("port", [6379, 8000, 8001, 8080, 5432, 1])
def test_a_host_listed_without_a_port_is_exempt_on_the_default_ports_only(port: int) -> None:
    bare = frozenset({AllowedTarget("127.0.0.1")})
    assert check_url("http://127.0.0.1/", bare).port == 80
    assert check_url("https://127.0.0.1/", bare).port == 443
    assert check_url("http://127.0.0.1:80/", bare).port == 80
    with pytest.raises(UnsafeTarget, match=r"127\.0\.0\.1 is a loopback address"):
        check_url(f"http://127.0.0.1:{port}/", bare)
    with pytest.raises(UnsafeTarget, match=r"127\.0\.0\.1 is a loopback address"):
        check_url("http://127.0.0.1:443/", bare)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("127.0.0.1", AllowedTarget("127.0.0.1")),
        (" Hooks.Example.ORG. ", AllowedTarget("hooks.example.org")),
        ("hooks.example.org:8443", AllowedTarget("hooks.example.org", 8443)),
        ("[::1]:9000", AllowedTarget("::1", 9000)),
        ("[::1]", AllowedTarget("::1")),
        ("::1", AllowedTarget("::1")),
    ],
)
def test_allow_list_entries_name_a_host_and_maybe_a_port(
    entry: str, expected: AllowedTarget
) -> None:
    assert allowed_target(entry) == expected


@pytest.mark.parametrize(
    "entry",
    ["", "host:0", "host:99999", "host:x", "http://host", "host/x", "u@host", "a b", "[::1"],
)
def test_malformed_allow_list_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="is not a host or host:port"):
        allowed_target(entry)


def test_the_request_carries_the_idempotency_key_and_the_callers_headers() -> None:
    server = TargetServer()
    with serve_wsgi(server) as url:
        request = OutboundRequest(
            7, f"{url}/x?y=1", "PUT", {"X-Trace": "t", "User-Agent": "mine"}, "hi"
        )
        outcome = perform(request, allowing(url), ConnectionPools(2), time.time())
    assert outcome.succeeded and outcome.status_code == 200 and outcome.error is None
    (received,) = server.received
    assert received.method == "PUT" and received.path == "/x?y=1" and received.body == b"hi"
    assert received.headers["Idempotency-Key"] == "7"
    assert received.headers["User-Agent"] == "mine" and received.headers["X-Trace"] == "t"
    assert received.headers["Host"] == url.removeprefix("http://")


def test_a_request_http_cannot_carry_fails_at_once_in_words() -> None:
    server = TargetServer()
    with serve_wsgi(server) as url:
        request = OutboundRequest(1, url, "GET", {"X-Uni": "\u2603"})
        outcome = perform(request, allowing(url), ConnectionPools(2), time.time())
    assert not outcome.succeeded and not outcome.retryable
    assert outcome.error == (
        "the request could not be sent: a header holds characters HTTP cannot carry"
    )
    assert server.received == []


def test_redirects_are_not_followed() -> None:
    server = TargetServer(default=(302, [("Location", "http://169.254.169.254/")], b""))
    with serve_wsgi(server) as url:
        outcome = perform(
            OutboundRequest(1, url, "GET"), allowing(url), ConnectionPools(2), time.time()
        )
    assert outcome.status_code == 302 and not outcome.succeeded and not outcome.retryable
    assert len(server.received) == 1


def test_the_body_read_is_capped() -> None:
    server = TargetServer(stream=200 * 1024 * 1024)
    policy = TargetPolicy(connect_timeout=2, total_timeout=10, max_response_bytes=1024 * 1024)
    with serve_wsgi(server) as url:
        started = time.monotonic()
        outcome = perform(
            OutboundRequest(1, url, "GET"), allowing(url, policy), ConnectionPools(2), time.time()
        )
        elapsed = time.monotonic() - started
        time.sleep(0.2)
    assert outcome.status_code == 200
    assert elapsed < 5
    assert server.streamed < 64 * 1024 * 1024, "the connection must be dropped, not drained"


def test_a_slow_target_times_out_within_the_total_timeout() -> None:
    server = TargetServer(delay=3)
    policy = TargetPolicy(connect_timeout=1, total_timeout=1)
    with serve_wsgi(server) as url:
        started = time.monotonic()
        outcome = perform(
            OutboundRequest(1, url, "GET"), allowing(url, policy), ConnectionPools(2), time.time()
        )
        elapsed = time.monotonic() - started
    assert outcome.status_code is None and outcome.retryable
    assert outcome.error == "no answer within 1 s"
    assert elapsed < 2


def test_an_address_refused_at_call_time_is_not_retried() -> None:
    outcome = perform(
        OutboundRequest(1, "http://10.0.0.1/", "GET"), LOCAL, ConnectionPools(2), time.time()
    )
    assert outcome.unsafe and not outcome.retryable
    assert outcome.error == "refused: 10.0.0.1 is a private address"


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (404, False), (400, False)]
)
def test_which_answers_are_retried(status: int, retryable: bool) -> None:
    assert Outcome(0.0, 1.0, status_code=status).retryable is retryable


def test_retry_after_values() -> None:
    assert _retry_after("120") == 120.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert _retry_after("soon") is None
    assert _retry_after(None) is None


def test_the_outcome_lines_use_the_documents_wording() -> None:
    ok = Outcome(0.0, 1.0, status_code=200, host="ifconfig.co")
    bad = Outcome(0.0, 1.0, status_code=503, host="ifconfig.co")
    broken = Outcome(0.0, 1.0, error="connection failed: refused", host="ifconfig.co")
    assert outcome_message(5, ok) == "Successfully called API at ifconfig.co for timestamp 5"
    assert (
        outcome_message(5, bad)
        == "Failed to call API at ifconfig.co for timestamp 5, status code: 503"
    )
    assert (
        outcome_message(5, broken)
        == "Error calling API at ifconfig.co for timestamp 5: connection failed: refused"
    )


def test_the_call_log_appends_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "api_calls.log"
    first, second = CallLog(path), CallLog(path)  # two writers, as two processes would be
    ok = Outcome(0.0, 1.0, status_code=200, host="h")
    for number in range(50):
        (first if number % 2 else second).write(number, 1, ok, "Succeeded")
    first.close()
    second.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 50
    assert all(line.endswith(f"for timestamp {n}") for n, line in enumerate(lines))


def test_the_dev_stacks_allow_list_reaches_none_of_the_suites_ports(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    entries = stack.env()["SCHEDULER_ALLOWED_HOSTS"].split(",")
    allowed = frozenset(map(allowed_target, entries))
    redis_port = 6379
    suite_ports = {*stack.ports.values(), stack.metrics_port, redis_port}
    for host, port in itertools.product(("127.0.0.1", "localhost"), suite_ports):
        with pytest.raises(UnsafeTarget, match="loopback"):
            check_url(f"http://{host}:{port}/", allowed)
    hook = f"http://127.0.0.1:{DEV_CALL_TARGET_PORT}/"
    assert check_url(hook, allowed).port == DEV_CALL_TARGET_PORT
