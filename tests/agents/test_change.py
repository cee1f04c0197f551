"""ChangeAnalyst: onset estimation, impact checks, suspicion scoring, trigger selection among
decoys, abstention and degradation, on small synthetic systems."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from opx.agents.local.change import (
    ChangeAnalyst,
    Onset,
    Series,
    change_confidence,
    detection_onset,
    estimate_onset,
    first_sustained,
    measure_impact,
    metric_onset,
    resource_short_name,
    sustained_z,
    time_proximity,
)
from opx.domain.errors import ErrorCode, OpxError
from opx.domain.hypothesis import Hypothesis, HypothesisStatus, RecommendationType, Risk
from opx.domain.tool_result import ToolResult
from opx.tools.memory import InMemoryTools, Source
from opx.tools.records import Change, ChangeKind, LogLevel, MetricSeries, iso_z

from .builders_context import (
    END,
    START,
    at,
    change,
    context,
    graph,
    healthy,
    incident,
    log_lines,
    metric,
    service_metrics,
    tools,
)

HALF_LIFE = timedelta(minutes=45)
MINUTE = timedelta(minutes=1)


def _decoys() -> list[Change]:
    return [
        change("c-true", -10, "payments"),  # callee, just before the onset
        change("c-old", -6 * 60, "checkout"),  # same service, hours earlier
        change("c-island", -5, "reporting"),  # unrelated service, at the onset
        change("c-caller", -20, "web", kind=ChangeKind.CONFIG),
        change("c-late", 55, "checkout"),  # after most of the window
        change("c-orphan", -2, None),  # service unknown
    ]


def _fault_below_checkout(*, callee_shift: bool = True) -> list[MetricSeries]:
    """payments-db slows down and fails from minute 9, payments fails with it, and the
    incident service checkout shows errors from minute 10; everything else is healthy."""
    series = healthy("web", "inventory", "inventory-db", "reporting", "reporting-db")
    series += service_metrics("checkout", errors=[(10, None, 25.0)])
    if callee_shift:
        series += service_metrics("payments", errors=[(9, None, 30.0)])
        series += service_metrics(
            "payments-db", latency=[(9, None, 300.0)], errors=[(9, None, 40.0)]
        )
    else:
        series += healthy("payments", "payments-db")
    return series


def _analyze(changes: list[Change], series: list[MetricSeries], **kwargs: Any) -> Hypothesis:
    return ChangeAnalyst(**kwargs).analyze(context(tools(changes=changes, series=series)))


def _finding(hyp: Hypothesis, change_id: str) -> dict[str, Any]:
    return next(c for c in hyp.findings["recent_changes"] if c["change_id"] == change_id)


def _payload(series: MetricSeries) -> dict[str, Any]:
    return {
        "id": series.id,
        "metric": series.metric,
        "timestamps": [iso_z(t) for t in series.timestamps],
        "values": list(series.values),
    }


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


def test_time_proximity_decays_before_the_onset_and_is_zero_after_it() -> None:
    onset = Onset(at(20), MINUTE, "metrics", "x")

    def score(minutes: float) -> float:
        return time_proximity(at(minutes), onset, HALF_LIFE)

    assert score(20) == pytest.approx(1.0)
    assert score(20 - 45) == pytest.approx(0.5)
    assert score(18) > score(5) > score(-60) > score(-6 * 60)
    assert 0.0 < score(20.5) < 1.0  # inside the onset's one-minute uncertainty
    assert score(21) == 0.0
    assert score(40) == 0.0  # later in the window: cannot have started the incident


def test_confidence_drops_when_another_change_is_nearly_as_suspicious() -> None:
    assert change_confidence(0.8, 0.0) > change_confidence(0.8, 0.4) > change_confidence(0.8, 0.78)
    assert change_confidence(0.0, 0.0) == 0.0
    assert change_confidence(1.0, 0.0) <= 0.85
    assert change_confidence(1.0, 0.0, measured=False) <= 0.4


def test_sustained_shift_needs_a_third_of_the_points() -> None:
    before = [10.0 + (i % 5) for i in range(60)]
    blip = [10.0] * 25 + [60.0] * 5
    step = [10.0] * 10 + [60.0] * 20
    assert sustained_z(before, blip, "up") < 1.0
    assert sustained_z(before, step, "up") > 10.0
    assert sustained_z(before[:5], step, "up") == 0.0  # too little history to tell
    assert first_sustained([0, 5, 0, 0, 5, 5, 1]) == 4
    assert first_sustained([0, 1, 2]) is None


def test_metric_onset_is_the_first_persistent_non_traffic_anomaly() -> None:
    directions: dict[str, str] = {}
    series = [
        Series.from_data(_payload(s), directions)
        for s in (
            metric("checkout", "errors", level=4, spread=1.5, stat="Sum", shifts=[(12, None, 25)]),
            metric(
                "checkout", "latency", shifts=[(30, 31, 200)]
            ),  # one-point spike: not persistent
            metric(
                "checkout", "requests", level=600, spread=20, stat="Sum", shifts=[(3, None, 500)]
            ),  # load is not a symptom onset
        )
    ]
    onset = metric_onset(series, START, END, timedelta(hours=3))

    assert onset is not None
    assert onset.at == at(13)  # the end of the first anomalous one-minute bucket
    assert onset.source == "metrics" and "errors" in onset.detail


def test_detection_onset_takes_the_earliest_time_field() -> None:
    inc = incident(
        detections=[
            {"rule_id": "r1", "detected_at": iso_z(at(25))},
            {"rule_id": "r2", "first_seen": iso_z(at(18)), "value": 3},
            {"rule_id": "r3", "created": "2020-01-01T00:00:00Z"},  # far from the window: ignored
            {"rule_id": "r4", "note": "not a time"},
        ]
    )
    onset = detection_onset(inc)

    assert onset is not None and onset.at == at(18)
    assert "first_seen" in onset.detail
    assert detection_onset(incident()) is None
    fallback = estimate_onset(incident(), None)
    assert fallback.at == START and fallback.source == "window start"
    assert estimate_onset(inc, Onset(at(11), MINUTE, "metrics", "m")).at == at(11)


def test_impact_of_a_faded_blip_is_lower_than_of_a_lasting_shift() -> None:
    change_at = at(-40)
    lasting = metric("inventory", "latency", shifts=[(-39, None, 200)])
    faded = metric("inventory", "latency", shifts=[(-39, -15, 200)])
    quiet = metric("inventory", "latency")
    incident_span = (at(10), END)

    def impact(series: MetricSeries) -> float:
        parsed = [Series.from_data(_payload(series), {})]
        return measure_impact(
            change_at,
            parsed,
            None,
            after=timedelta(minutes=30),
            baseline=timedelta(hours=3),
            incident=incident_span,
        ).factor

    assert impact(lasting) > 0.9
    assert 0.2 < impact(faded) < 0.5 < impact(lasting)
    assert impact(quiet) < 0.15
    unknown = measure_impact(
        change_at,
        [],
        None,
        after=timedelta(minutes=30),
        baseline=timedelta(hours=3),
        incident=incident_span,
    )
    assert not unknown.measured and unknown.factor == 0.5


# -- analysis with telemetry --------------------------------------------------------------------


def test_causal_change_with_impact_beats_a_closer_decoy_without_impact() -> None:
    changes = [
        change("c-cause", 8, "payments-db"),  # callee two hops down, just before onset
        change("c-decoy", 5, "inventory"),
    ]  # direct callee, nothing moved after it
    hyp = _analyze(changes, _fault_below_checkout())

    cause, decoy = _finding(hyp, "c-cause"), _finding(hyp, "c-decoy")
    assert decoy["prior"] > cause["prior"]  # timing and relation alone favour the decoy
    assert decoy["impact"]["factor"] < 0.2
    assert cause["impact"]["factor"] > 0.9
    assert hyp.root_cause is not None
    assert hyp.root_cause.service == "payments-db"
    assert hyp.root_cause.component == "payments-db-fn"
    assert hyp.root_cause.category == "DEPLOYMENT"
    assert hyp.findings["onset"]["source"] == "metrics"
    assert hyp.findings["onset"]["at"] == iso_z(at(11))
    assert hyp.confidence >= 0.5
    assert hyp.recommendations[0].type is RecommendationType.ROLLBACK
    assert any("c-decoy" in e.record_ids for e in hyp.contradicting_evidence)
    assert any(e.tool == "get_metrics" or e.tool == "search_logs" for e in hyp.evidence)


def test_change_after_the_onset_is_ignored() -> None:
    hyp = _analyze([change("c-late", 15, "payments-db")], _fault_below_checkout())

    late = _finding(hyp, "c-late")
    assert late["time_score"] == 0.0 and late["suspicion"] == 0.0
    assert late["minutes_before_onset"] < 0
    assert hyp.root_cause is None and hyp.confidence == 0.0


def test_detection_time_bounds_the_onset_without_metrics() -> None:
    detections = [{"rule_id": "checkout-errors", "detected_at": iso_z(at(5))}]
    inc = incident(detections=detections)
    before = ChangeAnalyst().analyze(
        context(tools(changes=[change("c-before", 2, "payments")]), inc=inc)
    )
    after = ChangeAnalyst().analyze(
        context(tools(changes=[change("c-after", 15, "payments")]), inc=inc)
    )

    assert before.findings["onset"]["source"] == "detections"
    assert before.root_cause is not None and before.root_cause.service == "payments"
    assert after.root_cause is None


def test_abstains_when_no_change_moved_a_related_service() -> None:
    # A fault below checkout with no change behind it: the changes around it are decoys.
    changes = [
        change("c-callee", 5, "inventory"),
        change("c-same", -50, "checkout", kind=ChangeKind.CONFIG),
        change("c-caller", 2, "web"),
    ]
    hyp = _analyze(changes, _fault_below_checkout())

    assert hyp.root_cause is None
    assert hyp.confidence == 0.0
    assert hyp.recommendations == []
    assert hyp.findings["impact_checked"] == 3
    assert all(c["impact"]["factor"] < 0.2 for c in hyp.findings["recent_changes"])
    assert "onset" in hyp.description


def test_change_whose_service_shifted_only_after_its_callee_is_a_victim() -> None:
    victim = _analyze([change("c-1", 7, "checkout")], _fault_below_checkout())
    alone = _analyze([change("c-1", 7, "checkout")], _fault_below_checkout(callee_shift=False))

    explained = _finding(victim, "c-1")["impact"]["explained_by_callee"]
    assert explained in {"payments", "payments-db"}
    assert _finding(alone, "c-1")["impact"]["explained_by_callee"] is None
    assert alone.root_cause is not None and alone.root_cause.service == "checkout"
    assert victim.confidence < 0.3 < alone.confidence


def test_changed_callee_that_shifted_first_explains_a_changed_caller() -> None:
    changes = [change("c-caller", 5, "checkout"), change("c-callee", 8, "payments-db")]
    hyp = _analyze(changes, _fault_below_checkout())

    assert hyp.root_cause is not None and hyp.root_cause.service == "payments-db"
    assert _finding(hyp, "c-caller")["impact"]["explained_by_callee"] is not None


def test_error_logs_count_as_impact() -> None:
    logs = [
        *log_lines("payments", "handled request ok", range(-180, 60, 3), LogLevel.INFO),
        *log_lines(
            "payments", "NullPointerException in PriceRule.apply", [m / 2 for m in range(6, 120)]
        ),
    ]
    inc = incident(detections=[{"detected_at": iso_z(at(8))}])
    hyp = ChangeAnalyst().analyze(
        context(tools(changes=[change("c-1", 2, "payments")], logs=logs), inc=inc)
    )

    trigger = hyp.findings["likely_trigger"]
    assert trigger["impact"]["signal"] == "error logs"
    assert trigger["impact"]["z_after_change"] >= 4.0
    assert hyp.confidence > 0.4  # above what timing and relation alone may give


def test_impact_checks_are_bounded() -> None:
    changes = [change("c-a", 5, "inventory"), change("c-b", 6, "payments")]
    hyp = _analyze(changes, _fault_below_checkout(), impact_checks=1)

    assert hyp.findings["impact_checked"] == 1
    checked = [c for c in hyp.findings["recent_changes"] if c["impact"] is not None]
    assert [c["change_id"] for c in checked] == ["c-b"]  # the higher prior


def test_unavailable_metrics_degrade_to_partial_with_a_capped_guess() -> None:
    hyp = ChangeAnalyst().analyze(
        context(
            tools(
                changes=[change("c-1", -5, "payments")],
                series=_fault_below_checkout(),
                unavailable={Source.METRICS: "metrics down"},
            )
        )
    )

    assert hyp.status is HypothesisStatus.PARTIAL
    assert hyp.root_cause is not None and hyp.root_cause.service == "payments"
    assert hyp.confidence <= 0.4
    assert any("get_metrics" in note for note in hyp.findings["degraded"])


# -- analysis without telemetry (timing and relation only) ------------------------------------


def test_right_change_wins_among_time_and_relation_decoys() -> None:
    hyp = ChangeAnalyst().analyze(context(tools(changes=_decoys())))

    assert hyp.status is HypothesisStatus.SUCCESS
    assert hyp.root_cause is not None
    assert hyp.root_cause.service == "payments"
    assert hyp.root_cause.component == "payments-fn"
    assert hyp.root_cause.category == "DEPLOYMENT"
    assert hyp.findings["likely_trigger"]["change_id"] == "c-true"
    assert hyp.findings["onset"]["source"] == "window start"
    suspicion = {c["change_id"]: c["suspicion"] for c in hyp.findings["recent_changes"]}
    assert suspicion["c-true"] == max(suspicion.values())
    for decoy in ("c-old", "c-island", "c-late", "c-orphan"):
        assert suspicion[decoy] < 0.15
    assert "c-orphan" in hyp.findings["unattributed_changes"]
    assert any("c-true" in e.record_ids for e in hyp.evidence)
    assert 0.0 < hyp.confidence <= 0.4
    assert "could not be measured" in hyp.description


def test_rollback_recommended_for_a_change_with_a_measured_impact() -> None:
    series = [
        *healthy("web", "payments", "payments-db", "inventory", "inventory-db"),
        *service_metrics("checkout", errors=[(-4, None, 30.0)]),
    ]
    hyp = _analyze([change("c-1", -5, "checkout")], series)

    rec = hyp.recommendations[0]
    assert rec.type is RecommendationType.ROLLBACK
    assert rec.risk is Risk.MEDIUM
    assert rec.description.startswith("Consider rolling back UpdateFunctionCode on arn:aws:lambda")
    assert "2026-03-01T11:55:00Z" in rec.description
    assert hyp.findings["rollback_recommendation"]["change_id"] == "c-1"


def test_unmeasured_suspect_gets_investigation_not_rollback() -> None:
    hyp = ChangeAnalyst().analyze(context(tools(changes=[change("c-1", -5, "checkout")])))

    assert hyp.root_cause is not None and hyp.root_cause.service == "checkout"
    assert [r.type for r in hyp.recommendations] == [RecommendationType.INVESTIGATION]
    assert hyp.findings["rollback_recommendation"] is None


def test_config_change_on_a_parameter_keeps_its_full_name() -> None:
    param = change(
        "c-ssm",
        -3,
        "checkout",
        kind=ChangeKind.CONFIG,
        resource="/checkout/prod/timeout-ms",
        event_name="PutParameter",
    )
    hyp = ChangeAnalyst().analyze(context(tools(changes=[param])))

    assert hyp.root_cause is not None
    assert hyp.root_cause.component == "/checkout/prod/timeout-ms"
    assert hyp.root_cause.category == "CONFIG_CHANGE"


def test_callee_beats_caller_at_the_same_time() -> None:
    hyp = ChangeAnalyst().analyze(
        context(
            tools(changes=[change("c-callee", -10, "payments-db"), change("c-caller", -10, "web")])
        )
    )

    assert hyp.root_cause is not None and hyp.root_cause.service == "payments-db"
    assert [a.service for a in hyp.alternatives] == ["web"]


def test_several_plausible_changes_lower_the_confidence() -> None:
    alone = ChangeAnalyst().analyze(context(tools(changes=[change("c-a", -10, "payments")])))
    crowded = ChangeAnalyst().analyze(
        context(tools(changes=[change("c-a", -10, "payments"), change("c-b", -11, "inventory")]))
    )

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
    hyp = ChangeAnalyst().analyze(
        context(
            tools(
                changes=[
                    change("c-old", -10 * 60, "checkout"),
                    change("c-island", -5, "reporting-db"),
                    change("c-orphan", -1, None),
                ]
            )
        )
    )

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
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        next_token: str | None = None,
    ) -> ToolResult:
        return ToolResult.failed(self.source_name, ErrorCode.DATA_SOURCE_UNAVAILABLE, "down")


def test_one_failed_source_degrades_to_partial() -> None:
    healthy_run = ChangeAnalyst().analyze(context(tools(changes=[change("c-1", -5, "payments")])))
    degraded_tools = _ConfigDown("test", graph=graph(), changes=[change("c-1", -5, "payments")])
    degraded = ChangeAnalyst().analyze(context(degraded_tools))

    assert degraded.status is HypothesisStatus.PARTIAL
    assert degraded.root_cause == healthy_run.root_cause
    assert degraded.confidence < healthy_run.confidence
    assert any("list_config_changes" in note for note in degraded.findings["degraded"])


def test_missing_graph_degrades_but_still_names_same_service_change() -> None:
    hyp = ChangeAnalyst().analyze(
        context(
            tools(changes=[change("c-1", -5, "checkout")], unavailable={Source.GRAPH: "graph down"})
        )
    )

    assert hyp.status is HypothesisStatus.PARTIAL
    assert hyp.root_cause is not None and hyp.root_cause.service == "checkout"


def test_no_change_source_at_all_raises() -> None:
    with pytest.raises(OpxError) as err:
        ChangeAnalyst().analyze(context(tools(unavailable={Source.CHANGES: "cloudtrail down"})))
    assert err.value.code is ErrorCode.DATA_SOURCE_UNAVAILABLE


def test_no_service_names_are_special() -> None:
    # The same system under other names gives the same answer under those names.
    renamed = {
        "web": "a",
        "checkout": "b",
        "payments": "c",
        "payments-db": "d",
        "inventory": "e",
        "inventory-db": "f",
        "reporting": "g",
        "reporting-db": "h",
    }
    edges = [
        (renamed[s], renamed[t])
        for s, t in [
            ("web", "checkout"),
            ("checkout", "payments"),
            ("payments", "payments-db"),
            ("checkout", "inventory"),
            ("inventory", "inventory-db"),
            ("reporting", "reporting-db"),
        ]
    ]
    changes = [change("c-cause", 8, "d"), change("c-decoy", 5, "e")]
    series = [
        MetricSeries(renamed[s.service], s.metric, s.stat, s.unit, s.timestamps, s.values)
        for s in _fault_below_checkout()
    ]
    hyp = ChangeAnalyst().analyze(
        context(tools(changes=changes, edges=edges, series=series), inc=incident("b"))
    )

    assert hyp.root_cause is not None and hyp.root_cause.service == "d"


def test_deterministic() -> None:
    changes = [*_decoys(), change("c-cause", 8, "payments-db")]
    first = _analyze(changes, _fault_below_checkout())
    second = _analyze(changes, _fault_below_checkout())
    assert first.model_dump() == second.model_dump()
