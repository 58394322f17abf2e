"""The slow-client drill against the real gateway process (gunicorn, one worker): 1,000
idle keep-alive connections, 64 stalled request heads and 64 uploads trickling one byte a
second, spread over 16 client addresses, while /health and an authenticated GET are
probed on new connections from another address.

The deadlines are short so the drill takes seconds: a head must arrive within 4 s; a
100,000-byte body within 4 s + 100,000 / 100,000 B/s = 5 s. The idle connections must
all still be held at the end (idle timeout 60 s, idle cap 2,048), so the gateway served
the probes while holding them; the per-address cap (128) is above the drill's ~71
connections per address, so it is not what protects the gateway.

Also here: the per-address cap and the idle cap, each on a gateway served in-process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from devstack.stack import RATE_LIMITS_OFF
from gateway.testing import serve_gateway
from servicekit.testing import TestKeys
from tests.gateway.conftest import GatewayFactory
from tests.gateway.drill_harness import (
    DrillPlan,
    DrillResult,
    RecordingServer,
    ResponseReader,
    connect,
    recording_upstream,
    request_head,
    run_drill,
)
from tests.gateway.gunicorn_harness import ServedGateway, gunicorn_gateway
from tests.support.connections import still_open

HEAD_TIMEOUT = 4.0
BODY_DEADLINE = 5.0  # grace 4 s + 100,000 bytes at 100,000 B/s
# While the slow clients are at it, every probe is answered well within the deadlines
# that would free a gateway they held (generous bounds: speed is the benchmark's).
PROBE_BOUND = 2.0
# While the 1,000 idle connections open (about 3,000 requests a second, a load burst
# rather than slow clients), a probe must still be answered.
OPENING_BOUND = 10.0
PLAN = DrillPlan(patience=12.0)
DRILL_SETTINGS = {
    **RATE_LIMITS_OFF,
    "GUNICORN_WORKERS": "1",
    "GATEWAY_HEAD_TIMEOUT": str(HEAD_TIMEOUT),
    "GATEWAY_BODY_GRACE": "4",
    "GATEWAY_BODY_MIN_RATE": "100000",
    "GATEWAY_IDLE_TIMEOUT": "60",
    "GATEWAY_MAX_IDLE_CONNECTIONS": "2048",
    "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "128",
}


@pytest.fixture(scope="module")
def recorder(test_keys: TestKeys) -> Iterator[RecordingServer]:
    with recording_upstream(test_keys.jwks) as server:
        yield server


@pytest.fixture(scope="module")
def drilled_gateway(
    recorder: RecordingServer, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedGateway]:
    log: Path = tmp_path_factory.mktemp("drill") / "gateway.log"
    with gunicorn_gateway(recorder.url, redis_url, log, DRILL_SETTINGS) as served:
        yield served


@pytest.fixture(scope="module")
def drill(
    drilled_gateway: ServedGateway, recorder: RecordingServer, test_keys: TestKeys
) -> DrillResult:
    authorization = f"Bearer {test_keys.token(sub='driller')}"
    probes = {
        "health": request_head("GET", "/health", [("Connection", "close")]),
        "authenticated": request_head(
            "GET", "/sample/gets", [("Authorization", authorization), ("Connection", "close")]
        ),
    }
    recorder.clear()
    return asyncio.run(
        run_drill(
            drilled_gateway.address,
            PLAN,
            authorization,
            probes,
            probe_bound=OPENING_BOUND,
            probe_interval=0.05,
        )
    )


def test_every_probe_is_answered_throughout_the_drill(drill: DrillResult) -> None:
    late_or_failed = [
        p
        for p in drill.probes
        if p.status != 200
        or p.latency >= (PROBE_BOUND if p.started >= drill.idle_held else OPENING_BOUND)
    ]
    names = {p.name for p in drill.probes}
    assert names == {"health", "authenticated"}
    assert len(drill.probes) >= 20, f"too few probes to say anything: {len(drill.probes)}"
    assert late_or_failed == [], (
        f"{len(late_or_failed)} of {len(drill.probes)} probes failed or took over "
        f"{PROBE_BOUND} s ({OPENING_BOUND} s while the idle connections opened): "
        f"{late_or_failed[:10]}"
    )


def test_the_idle_connections_were_all_served_and_held(drill: DrillResult) -> None:
    assert drill.idle_opened == PLAN.idle
    assert drill.idle_answers == [200] * PLAN.idle
    assert drill.idle_open_at_end == PLAN.idle, "the gateway closed idle connections"


def test_trickling_uploads_end_with_408_or_a_closed_connection(drill: DrillResult) -> None:
    assert len(drill.tricklers) == PLAN.tricklers
    still_open = [e for e in drill.tricklers if e.after is None]
    assert still_open == [], f"{len(still_open)} trickling uploads never ended"
    assert {e.status for e in drill.tricklers} <= {408, None}
    # Cut off by the body deadline, not before it (1 s of slack for the client's clock).
    assert min(e.after or 0 for e in drill.tricklers) >= BODY_DEADLINE - 1.0
    assert max(e.sent for e in drill.tricklers) < PLAN.upload_size


def test_stalled_heads_are_closed_by_the_head_deadline(drill: DrillResult) -> None:
    assert len(drill.stalled) == PLAN.stalled_heads
    endings = [e.after for e in drill.stalled]
    assert None not in endings, "a stalled head was never closed"
    closed_after = [after for after in endings if after is not None]
    assert min(closed_after) >= HEAD_TIMEOUT - 0.5, f"closed before the deadline: {closed_after}"
    assert max(closed_after) <= HEAD_TIMEOUT + 3.0, f"closed long after it: {closed_after}"


def test_the_upstream_never_saw_an_incomplete_request(
    drill: DrillResult, recorder: RecordingServer
) -> None:
    assert recorder.requests_to(PLAN.upload_target) == [], "a trickled upload reached the service"
    incomplete = [r for r in recorder.received if not r.complete]
    assert incomplete == []
    assert len(recorder.requests_to(PLAN.idle_target)) == PLAN.idle


# --- the per-address and idle caps, in-process ---------------------------------------------


def public_get() -> bytes:
    return request_head("GET", "/ticket/public")


def answer_status(reader: ResponseReader) -> int | None:
    """The status of a public GET on this connection; None when it was closed instead."""
    try:
        reader.sock.sendall(public_get())
    except (BrokenPipeError, ConnectionResetError):
        return None
    response = reader.next()
    return None if response is None else response.status


def served_request(reader: ResponseReader) -> int:
    status = answer_status(reader)
    assert status is not None, "the connection was closed instead of answered"
    return status


def test_connections_beyond_the_per_address_cap_are_closed(
    make_gateway: GatewayFactory,
) -> None:
    gateway = make_gateway(max_connections_per_address=3)
    with serve_gateway(gateway) as served, ExitStack() as stack:
        address = served_address(served.url)
        held = [stack.enter_context(connect(address, "127.0.3.1")) for _ in range(3)]
        readers = [ResponseReader(sock) for sock in held]
        assert [served_request(r) for r in readers] == [200] * 3

        beyond = stack.enter_context(connect(address, "127.0.3.1"))
        assert answer_status(ResponseReader(beyond)) is None, "a fourth connection was served"
        # The held connections still work, and another address is not limited by this one.
        assert [served_request(r) for r in readers] == [200] * 3
        other = stack.enter_context(connect(address, "127.0.3.2"))
        assert served_request(ResponseReader(other)) == 200
        # A held connection closed frees its place.
        held[0].close()
        time.sleep(0.2)
        again = stack.enter_context(connect(address, "127.0.3.1"))
        assert served_request(ResponseReader(again)) == 200


def test_beyond_the_idle_cap_the_oldest_idle_connection_is_closed(
    make_gateway: GatewayFactory,
) -> None:
    gateway = make_gateway(max_idle_connections=3, idle_timeout=60.0)
    with serve_gateway(gateway) as served, ExitStack() as stack:
        address = served_address(served.url)
        connections = [stack.enter_context(connect(address)) for _ in range(4)]
        readers = [ResponseReader(sock) for sock in connections]
        for reader in readers[:3]:  # idle in this order: 0, 1, 2
            assert served_request(reader) == 200
            time.sleep(0.05)
        assert all(still_open(sock) for sock in connections)
        # 1 becomes busy and idle again: 0 stays the oldest idle.
        assert served_request(readers[1]) == 200

        assert served_request(readers[3]) == 200  # a fourth idle one

        assert readers[0].rest_closes(), "the oldest idle connection was not closed"
        assert [still_open(sock) for sock in connections[1:]] == [True] * 3
        assert [served_request(r) for r in readers[1:]] == [200] * 3


def served_address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)
