"""Alarms and the dashboard on the metrics the runtime emits. Every Phase6 metric is taken from
opx.observability.metrics with exactly its dimension set, so an alarm watches the series that
is really published.

Missing data is decided per alarm: the rate, retries, cost and duration alarms have no data
only when no execution ended, which is not a fault of theirs (NOT_BREACHING); the heartbeat
alarm is the one that turns silence into an alarm: incidents matched by the rule while no
execution is reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from opx.observability import metrics as m
from opx_infra.settings import InfraSettings

FIVE_MINUTES = Duration.minutes(5)
HOUR = Duration.hours(1)
# Longer than the executor's timeout, so an execution still running is not taken for silence.
HEARTBEAT_PERIOD = Duration.minutes(15)


@dataclass(frozen=True)
class Watched:
    """What the alarms watch besides OPX's own metrics."""

    incident_rule_name: str
    agent_ids: Sequence[str]


def opx_metric(
    metric: m.Metric,
    namespace: str,
    dimensions: dict[str, str] | None = None,
    *,
    statistic: str = "Sum",
    period: Duration = FIVE_MINUTES,
    label: str | None = None,
) -> cw.Metric:
    """A runtime metric; refuses a dimension set other than the one it is published with."""
    given = dict(dimensions or {})
    if set(given) != set(metric.dimensions):
        raise ValueError(
            f"{metric.name} is published with dimensions {list(metric.dimensions)}, "
            f"not {sorted(given)}"
        )
    return cw.Metric(
        namespace=namespace,
        metric_name=metric.name,
        dimensions_map=given or None,
        statistic=statistic,
        period=period,
        label=label,
    )


def executions_by_status(namespace: str, period: Duration = FIVE_MINUTES) -> dict[str, cw.Metric]:
    """Execution/Count for every Status the handler publishes it with, ERROR (an invocation
    that raised: store, SSM or publishing down) included, so that no outcome goes uncounted."""
    return {
        status: opx_metric(
            m.EXECUTION_COUNT,
            namespace,
            {m.STATUS: status},
            period=period,
            label=status,
        )
        for status in m.EXECUTION_STATUSES
    }


def _ids(names: Sequence[str]) -> dict[str, str]:
    return {name: f"s{i}" for i, name in enumerate(names)}


def failure_rate(namespace: str) -> cw.MathExpression:
    """Percentage of invocations that failed (a FAILED result, or ERROR: raised for an
    infrastructure failure), over every status (0 to 100)."""
    counts = executions_by_status(namespace)
    ids = _ids(list(counts))
    total = " + ".join(f"FILL({ids[s]}, 0)" for s in counts)
    failed = " + ".join(f"FILL({ids[s]}, 0)" for s in m.FAILURE_STATUSES)
    return cw.MathExpression(
        expression=f"100 * ({failed}) / ({total})",
        using_metrics={ids[s]: metric for s, metric in counts.items()},
        label="Failure rate (%)",
        period=FIVE_MINUTES,
    )


def executions_total(namespace: str) -> cw.MathExpression:
    counts = executions_by_status(namespace)
    ids = _ids(list(counts))
    return cw.MathExpression(
        expression=" + ".join(f"FILL({ids[s]}, 0)" for s in counts),
        using_metrics={ids[s]: metric for s, metric in counts.items()},
        label="Executions",
        period=FIVE_MINUTES,
    )


def heartbeat(namespace: str, watched: Watched) -> cw.MathExpression:
    """1 in a period where the incident rule matched events and no execution was reported."""
    counts = executions_by_status(namespace, HEARTBEAT_PERIOD)
    ids = _ids(list(counts))
    reported = " + ".join(f"FILL({ids[s]}, 0)" for s in counts)
    matched = cw.Metric(
        namespace="AWS/Events",
        metric_name="MatchedEvents",
        dimensions_map={"RuleName": watched.incident_rule_name},
        statistic="Sum",
        period=HEARTBEAT_PERIOD,
    )
    return cw.MathExpression(
        expression=f"IF(FILL(incidents, 0) > 0 AND ({reported}) == 0, 1, 0)",
        using_metrics={"incidents": matched, **{ids[s]: metric for s, metric in counts.items()}},
        label="Incidents without executions",
        period=HEARTBEAT_PERIOD,
    )


def make_alarms(
    scope: Construct, settings: InfraSettings, key: kms.IKey, watched: Watched
) -> tuple[sns.Topic, list[cw.Alarm]]:
    namespace = settings.metrics_namespace
    topic = sns.Topic(
        scope, "AlarmTopic", topic_name="opx-alarms", master_key=key, enforce_ssl=True
    )
    if settings.alarm_email:
        topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
    not_breaching = cw.TreatMissingData.NOT_BREACHING
    specs: list[tuple[str, str, cw.IMetric, float, int]] = [
        (
            "FailureRate",
            "more than the allowed share of executions FAILED or raised (ERROR) in 5 minutes",
            failure_rate(namespace),
            settings.failure_rate_percent,
            1,
        ),
        (
            "Retries",
            "an execution retried agents more than allowed",
            opx_metric(m.EXECUTION_RETRIES, namespace, statistic="Maximum"),
            settings.retries_per_execution,
            1,
        ),
        (
            "CostPerHour",
            "model cost in one hour above the limit (US dollars)",
            opx_metric(m.COST_TOTAL, namespace, period=HOUR),
            settings.cost_per_hour_usd,
            1,
        ),
        (
            "Duration",
            "an execution took longer than allowed (milliseconds)",
            opx_metric(m.EXECUTION_DURATION, namespace, statistic="Maximum"),
            settings.duration_alarm_s * 1000,
            1,
        ),
        (
            "Heartbeat",
            "incidents arrived but no execution was reported for 30 minutes",
            heartbeat(namespace, watched),
            0,
            2,
        ),
    ]
    alarms = []
    for name, description, metric, threshold, periods in specs:
        alarm = cw.Alarm(
            scope,
            f"Alarm{name}",
            alarm_name=f"opx-{name}",
            alarm_description=f"OPX: {description}",
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=not_breaching,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(topic))
        alarm.add_ok_action(cw_actions.SnsAction(topic))
        alarms.append(alarm)
    return topic, alarms


def make_dashboard(scope: Construct, settings: InfraSettings, watched: Watched) -> cw.Dashboard:
    namespace = settings.metrics_namespace
    agents = sorted(watched.agent_ids)
    dashboard = cw.Dashboard(scope, "Dashboard", dashboard_name="opx")
    dashboard.add_widgets(
        cw.GraphWidget(
            title="Executions by outcome",
            view=cw.GraphWidgetView.TIME_SERIES,
            left=list(executions_by_status(namespace).values()),
            width=12,
        ),
        cw.GaugeWidget(
            title="Failure rate (%)",
            metrics=[failure_rate(namespace)],
            left_y_axis=cw.YAxisProps(min=0, max=100),
            width=6,
        ),
        cw.GraphWidget(
            title="Cost (USD per hour)",
            view=cw.GraphWidgetView.TIME_SERIES,
            left=[opx_metric(m.COST_TOTAL, namespace, period=HOUR, label="Cost")],
            width=6,
        ),
    )
    dashboard.add_widgets(
        cw.GraphWidget(
            title="Agent duration (ms, p90)",
            view=cw.GraphWidgetView.BAR,
            left=[
                opx_metric(m.AGENT_DURATION, namespace, {m.AGENT_ID: a}, statistic="p90", label=a)
                for a in agents
            ],
            width=12,
        ),
        cw.GraphWidget(
            title="Agent failure rate (%)",
            view=cw.GraphWidgetView.BAR,
            left=[
                opx_metric(
                    m.AGENT_FAILURE_RATE, namespace, {m.AGENT_ID: a}, statistic="Average", label=a
                )
                for a in agents
            ],
            width=12,
        ),
    )
    return dashboard
