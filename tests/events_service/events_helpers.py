"""Constants of events_service's tests (their users come from tests.real_auth)."""

from __future__ import annotations

SERVICE_SECRET = "events-test-secret"
OTHER_COLLEGE = "Institute of Design"
# What staff are given in these tests unless a test says otherwise.
EVENT_PRIVILEGES = {"event": "crud"}
