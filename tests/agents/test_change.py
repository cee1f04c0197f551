"""ChangeAnalyst: suspicion scoring, trigger selection among decoys, abstention, degradation."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from opx.agents.local.change import (
    ChangeAnalyst,
    change_confidence,
    resource_short_name,
    time_proximity,
)
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import HypothesisStatus, RecommendationType, Risk
from opx.domain.tool_result import ToolResult
from opx.tools.memory import InMemoryTools, Source
from opx.tools.records import Change, ChangeKind

from .builders_context import END, START, at, change, context, graph, incident, tools

HALF_LIFE = timedelta(minutes=45)


def _decoys() -> list[Change]:
    return [
        change("c-true", -10, "payments"),                   # callee, just before the onset
        change("c-old", -6 * 60, "checkout"),                # same service, hours earlier
        change("c-island", -5, "reporting"),                 # unrelated service, at the onset
        change("c-caller", -20, "web", kind=ChangeKind.CONFIG),
        change("c-late", 55, "checkout"),                    # after most of the window
        change("c-orphan", -2, None),                        # service unknown
    ]


# -- pure scoring ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("arn:aws:lambda:us-east-1:111122223333:function:checkout-handler", "checkout-handler"),
        ("arn:aws:ecs:us-east-1:111122223333:service/prod-cluster/checkout-svc", "checkout-svc"),
        ("arn:aws:ssm:us-east-1:111122223333:parameter/app/prod/pool-size", "/app/prod/pool-size"),
        ("/app/prod/feature-flag", "/app/prod/feature-flag"),
        ("orders-table", "orders-table"),
    ],
)
def test_resource_short_name(resource: str, expected: str) -> None:
    assert resource_short_name(resource) == expected


def test_time_proximity_peaks_at_onset_and_decays_both_ways() -> None:
    def score(minutes: float) -> float:
        return time_proximity(at(minutes), START, END, HALF_LIFE)

    assert score(0) == pytest.approx(1.0)
    assert score(-45) == pytest.approx(0.5)
    assert score(-10) > score(-60) > score(-6 * 60)
    assert score(3) == pytest.approx(1.0)  # early inside the window still counts as the onset
    assert score(5) > score(30) > score(55)
    assert score(55) < 0.15
    assert score(60) == 0.0


def test_confidence_drops_when_another_change_is_nearly_as_suspicious() -> None:
    assert change_confidence(0.8, 0.0) > change_confidence(0.8, 0.4) > change_confidence(0.8, 0.78)
    assert change_confidence(0.0, 0.0) == 0.0
    assert change_confidence(1.0, 0.0) <= 0.85


# -- analysis ----------------------------------------------------------------------------------


def test_right_change_wins_among_time_and_relation_decoys() -> None:
    hyp = ChangeAnalyst().analyze(context(tools(changes=_decoys())))

    assert hyp.status is HypothesisStatus.SUCCESS
    assert hyp.root_cause is not None
    assert hyp.root_cause.service == "payments"
    assert hyp.root_cause.component == "payments-fn"
    assert hyp.root_cause.category == "DEPLOYMENT"
    assert hyp.findings["likely_trigger"]["change_id"] == "c-true"
    suspicion = {c["change_id"]: c["suspicion"] for c in hyp.findings["recent_changes"]}
    assert suspicion["c-true"] == max(suspicion.values())
    for decoy in ("c-old", "c-island", "c-late", "c-orphan"):
        assert suspicion[decoy] < 0.15
    assert "c-orphan" in hyp.findings["unattributed_changes"]
    assert any("c-true" in e.record_ids for e in hyp.evidence)
    assert 0.0 < hyp.confidence <= 0.85


def test_rollback_recommended_for_a_highly_suspicious_change() -> None:
    hyp = ChangeAnalyst().analyze(context(tools(changes=[change("c-1", -5, "checkout")])))

    rec = hyp.recommendations[0]
    assert rec.type is RecommendationType.ROLLBACK
    assert rec.risk is Risk.MEDIUM
    assert rec.description.startswith("Consider rolling back UpdateFunctionCode on arn:aws:lambda")
    assert "2026-03-01T11:55:00Z" in rec.description
    assert hyp.findings["rollback_recommendation"]["change_id"] == "c-1"


def test_weak_suspect_gets_investigation_not_rollback() -> None:
    # A caller's config change 40 minutes earlier: plausible but far from compelling.
    hyp = ChangeAnalyst().analyze(
        context(tools(changes=[change("c-1", -40, "web", kind=ChangeKind.CONFIG)])))

    assert hyp.root_cause is not None and hyp.root_cause.service == "web"
    assert hyp.root_cause.category == "CONFIG_CHANGE"
    assert [r.type for r in hyp.recommendations] == [RecommendationType.INVESTIGATION]
    assert hyp.findings["rollback_recommendation"] is None


def test_config_change_on_a_parameter_keeps_its_full_name() -> None:
    param = change("c-ssm", -3, "checkout", kind=ChangeKind.CONFIG,
                   resource="/checkout/prod/timeout-ms", event_name="PutParameter")
    hyp = ChangeAnalyst().analyze(context(tools(changes=[param])))

    assert hyp.root_cause is not None
    assert hyp.root_cause.component == "/checkout/prod/timeout-ms"
    assert hyp.root_cause.category == "CONFIG_CHANGE"


def test_callee_beats_caller_at_the_same_time() -> None:
    hyp = ChangeAnalyst().analyze(context(tools(changes=[
        change("c-callee", -10, "payments-db"), change("c-caller", -10, "web")])))

    assert hyp.root_cause is not None and hyp.root_cause.service == "payments-db"
    assert [a.service for a in hyp.alternatives] == ["web"]


def test_several_plausible_changes_lower_the_confidence() -> None:
    alone = ChangeAnalyst().analyze(context(tools(changes=[change("c-a", -10, "payments")])))
    crowded = ChangeAnalyst().analyze(context(tools(changes=[
        change("c-a", -10, "payments"), change("c-b", -11, "inventory")])))

    assert crowded.root_cause is not None and crowded.root_cause.service == "payments"
    assert crowded.confidence < alone.confidence
    assert [a.service for a in crowded.alternatives] == ["inventory"]


def test_abstains_without_changes() -> None:
    hyp = ChangeAnalyst().analyze(context(tools()))

    assert hyp.status is HypothesisStatus.SUCCESS
    assert hyp.root_cause is None
    assert hyp.confidence == 0.0
    assert hyp.recommendations == []
    assert "No deployment" in hyp.description


def test_abstains_when_changes_are_irrelevant() -> None:
    hyp = ChangeAnalyst().analyze(context(tools(changes=[
        change("c-old", -10 * 60, "checkout"), change("c-island", -5, "reporting-db"),
        change("c-orphan", -1, None)])))

    assert hyp.root_cause is None
    assert hyp.confidence == 0.0
    assert hyp.findings["likely_trigger"] is None
    assert len(hyp.findings["recent_changes"]) == 3


def test_lookback_bounds_the_query() -> None:
    changes = [change("c-2h", -120, "checkout")]
    default = ChangeAnalyst().analyze(context(tools(changes=changes)))
    short = ChangeAnalyst(lookback=timedelta(hours=1)).analyze(context(tools(changes=changes)))

    assert [c["change_id"] for c in default.findings["recent_changes"]] == ["c-2h"]
    assert short.findings["recent_changes"] == []


class _ConfigDown(InMemoryTools):
    def list_config_changes(
        self, start: datetime, end: datetime, service: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        return ToolResult.failed(self.source_name, ErrorCode.DATA_SOURCE_UNAVAILABLE, "down")


def test_one_failed_source_degrades_to_partial() -> None:
    healthy = ChangeAnalyst().analyze(context(tools(changes=[change("c-1", -5, "payments")])))
    degraded_tools = _ConfigDown("test", graph=graph(), changes=[change("c-1", -5, "payments")])
    degraded = ChangeAnalyst().analyze(context(degraded_tools))

    assert degraded.status is HypothesisStatus.PARTIAL
    assert degraded.root_cause == healthy.root_cause
    assert degraded.confidence < healthy.confidence
    assert any("list_config_changes" in note for note in degraded.findings["degraded"])


def test_missing_graph_degrades_but_still_names_same_service_change() -> None:
    hyp = ChangeAnalyst().analyze(context(tools(
        changes=[change("c-1", -5, "checkout")], unavailable={Source.GRAPH: "graph down"})))

    assert hyp.status is HypothesisStatus.PARTIAL
    assert hyp.root_cause is not None and hyp.root_cause.service == "checkout"


def test_no_change_source_at_all_raises() -> None:
    with pytest.raises(OpxError) as err:
        ChangeAnalyst().analyze(context(tools(unavailable={Source.CHANGES: "cloudtrail down"})))
    assert err.value.code is ErrorCode.DATA_SOURCE_UNAVAILABLE


def test_no_service_names_are_special() -> None:
    # The same topology under other names gives the same answer under those names.
    renamed = {"web": "a", "checkout": "b", "payments": "c", "payments-db": "d",
               "inventory": "e", "inventory-db": "f", "reporting": "g", "reporting-db": "h"}
    edges = [(renamed[s], renamed[t]) for s, t in
             [("web", "checkout"), ("checkout", "payments"), ("payments", "payments-db"),
              ("checkout", "inventory"), ("inventory", "inventory-db"),
              ("reporting", "reporting-db")]]
    changes = [change(c.change_id, (c.timestamp - START).total_seconds() / 60,
                      renamed.get(c.service or "")) for c in _decoys()]
    hyp = ChangeAnalyst().analyze(context(tools(changes=changes, edges=edges),
                                          inc=incident("b")))

    assert hyp.root_cause is not None and hyp.root_cause.service == "c"


def test_deterministic() -> None:
    first = ChangeAnalyst().analyze(context(tools(changes=_decoys())))
    second = ChangeAnalyst().analyze(context(tools(changes=_decoys())))
    assert first.model_dump() == second.model_dump()
