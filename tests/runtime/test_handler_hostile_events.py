"""Hostile and malformed events: every one is answered REJECTED, none raises, nothing is
written (property test)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opx.runtime.response import RESPONSE_KEYS
from tests.runtime.handler_builders import Harness

EXAMPLES = 600
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
REQUIRED = ("incident_id", "service", "severity", "window_start", "window_end", "evidence_bundle")
good_detail: dict[str, Any] = {
    "incident_id": "INC-1",
    "service": "front",
    "severity": "SEV2",
    "window_start": "2026-10-01T10:00:00Z",
    "window_end": "2026-10-01T10:30:00Z",
    "evidence_bundle": {"evidence_id": "e"},
}


@st.composite
def broken_details(draw: st.DrawFn) -> dict[str, Any]:
    """A detail with one required field missing or replaced by a value of the wrong shape."""
    detail = dict(good_detail)
    victim = draw(st.sampled_from(REQUIRED))
    if draw(st.booleans()):
        del detail[victim]
    else:
        detail[victim] = draw(
            st.none() | st.lists(scalars, max_size=3) | st.just("") | st.just("x" * 5000)
        )
    extra = draw(st.dictionaries(st.text(max_size=8), json_like, max_size=3))
    return {**extra, **detail} if draw(st.booleans()) else detail


def nested(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"a": value}
    return value


envelopes = st.fixed_dictionaries(
    {"source": st.just("opx.incident"), "detail-type": st.just("IncidentCreated")},
    optional={"detail": json_like | broken_details()},
)
hostile = st.one_of(
    json_like,
    envelopes,
    st.builds(
        lambda d: {"source": "opx.incident", "detail-type": "IncidentCreated", "detail": d},
        broken_details(),
    ),
    st.binary(max_size=200),
    st.text(max_size=200),
    st.integers(70, 400).map(nested),
    st.just(b"{" * 5000),
    st.just("x" * (300 * 1024)),
    st.dictionaries(st.text(max_size=10), json_like, max_size=6),
)


def test_hostile_events_are_rejected_without_raising_or_writing() -> None:
    seen = {"count": 0}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        harness = Harness(data_dir)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(event=hostile)
        def check(event: Any) -> None:
            response = harness.run(event)
            seen["count"] += 1
            assert tuple(response) == RESPONSE_KEYS
            assert response["status"] == "REJECTED", (event, response)
            assert response["reason"] == "INVALID_EVENT"
            assert response["error"]["code"] and response["error"]["message"]
            assert response["execution_id"] is None

        check()
        assert seen["count"] >= 500
        assert not data_dir.exists()
        assert sum(harness.backend.calls.values()) == 0
