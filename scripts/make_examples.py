"""Writes the three example incidents (event, telemetry bundle, expected answer) under examples/.

Run ``python scripts/make_examples.py``: every run rewrites the same bytes (fixed seeds, standard
library only). The bundles follow docs/bundle-format.md (``opx-bundle/v1``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import random
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

JsonDict = dict[str, Any]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ACCOUNT = "111122223333"
REGION = "us-east-1"
BASELINE_MINUTES = 180
WINDOW_MINUTES = 30
# Traces are sampled more densely inside the incident window, as a collector pulling "all window
# traces plus a baseline sample" would; analysts must compare ratios, not counts.
TRACES_PER_MINUTE = {"baseline": 0.5, "window": 5.0}
SAMPLING_NOTE = (
    f"sampled traces ({TRACES_PER_MINUTE['baseline']:g} per minute before the incident window, "
    f"{TRACES_PER_MINUTE['window']:g} per minute inside it)"
)
NOISE_LINES_PER_MINUTE = 0.55
# Node types that run application code and therefore write logs.
LOGGING_TYPES = ("AWS::ECS::Fargate", "AWS::Lambda::Function", "AWS::ApiGateway::Stage")
STANDARD_DIRECTIONS = {
    "latency": "up",
    "requests": "both",
    "errors": "up",
    "availability": "down",
    "cpu": "up",
}


# -- small helpers -----------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def alarm_time(moment: datetime) -> str:
    """The timestamp form CloudWatch uses inside alarm events."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def ramp(x: float, start: float, end: float) -> float:
    """0 before ``start``, 1 after ``end``, linear in between."""
    if x <= start:
        return 0.0
    if x >= end:
        return 1.0
    return (x - start) / (end - start)


def uuid4(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(128):032x}"
    variant = "89ab"[int(digits[16], 16) % 4]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, count, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def ar1(rng: random.Random, n: int, phi: float, sigma: float) -> list[float]:
    """An autocorrelated noise path (started in its stationary distribution)."""
    value = rng.gauss(0.0, sigma / math.sqrt(1 - phi * phi))
    path = []
    for _ in range(n):
        value = phi * value + rng.gauss(0.0, sigma)
        path.append(value)
    return path


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def diurnal(peak_hour: float, amplitude: float, moment: datetime) -> float:
    hour = moment.hour + moment.minute / 60
    return 1 + amplitude * math.cos(2 * math.pi * (hour - peak_hour) / 24)


def lognormal_sigma(p99_over_mean: float) -> float:
    """The sigma of a lognormal whose p99 is ``p99_over_mean`` times its mean."""
    low, high = 0.01, 2.0
    for _ in range(60):
        mid = (low + high) / 2
        if math.exp(2.326 * mid - mid * mid / 2) < p99_over_mean:
            low = mid
        else:
            high = mid
    return (low + high) / 2


# -- log message tokens ------------------------------------------------------------------------

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_MIXED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_IP_OCTETS = ((24, 203), (0, 255), (0, 255), (1, 254))
_TOKEN = re.compile(r"\{(\w+)(?::([\w.-]+))?\}")


def _chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _int_range(rng: random.Random, arg: str | None) -> str:
    low, high = (arg or "1-48").split("-")
    return str(rng.randint(int(low), int(high)))


def _millis(rng: random.Random, arg: str | None) -> str:
    return str(max(1, round(rng.lognormvariate(math.log(float(arg or "40")), 0.5))))


def _lambda_report(rng: random.Random, arg: str | None) -> str:
    duration = rng.lognormvariate(math.log(float(arg or "60")), 0.35)
    return f"Duration: {duration:.2f} ms\tBilled Duration: {math.ceil(duration)} ms"


def _slow_split(rng: random.Random, arg: str | None) -> str:
    """A slow request's total time and the part spent waiting on one call, in that order."""
    low, high = (arg or "2600-4900").split("-")
    part = rng.randint(int(low), int(high))
    return f"took {part + rng.randint(120, 420)}ms (payment {part}ms)"


TOKENS: dict[str, Callable[[random.Random, str | None], str]] = {
    "rid": lambda r, _: uuid4(r),
    "hex": lambda r, _: f"{r.getrandbits(32):08x}",
    "int": _int_range,
    "ms": _millis,
    "report": _lambda_report,
    "sku": lambda r, _: f"SKU-{r.randint(10000, 99999)}",
    "user": lambda r, _: f"u-{r.randint(100000, 999999)}",
    "order": lambda r, _: "ord_" + _chars(r, _UPPER, 10),
    "cart": lambda r, _: f"cart-{r.getrandbits(32):08x}",
    "amount": lambda r, arg: f"{r.lognormvariate(math.log(float(arg or '60')), 0.6):.2f}",
    "ip": lambda r, _: ".".join(str(r.randint(lo, hi)) for lo, hi in _IP_OCTETS),
    "pi": lambda r, _: "pi_" + _chars(r, _MIXED, 14),
    "awsrid": lambda r, _: _chars(r, _UPPER, 52),
    "pick": lambda r, arg: r.choice((arg or "a").split(".")),
    "score": lambda r, _: f"{r.uniform(0.01, 0.35):.2f}",
    "seat": lambda r, _: f"{r.choice('ABCDEFGHJK')}{r.randint(1, 40)}",
    "split": _slow_split,
}


def lambda_report(median_ms: int, memory_mb: int, used_mb: str) -> str:
    """The template of a Lambda REPORT line."""
    return (
        f"REPORT RequestId: {{rid}}\t{{report:{median_ms}}}\tMemory Size: {memory_mb} MB\t"
        f"Max Memory Used: {{int:{used_mb}}} MB"
    )


def fill(template: str, rng: random.Random, values: dict[str, str] | None = None) -> str:
    """``template`` with each ``{token}`` or ``{token:arg}`` replaced by a generated value."""

    def replace(match: re.Match[str]) -> str:
        name, arg = match.group(1), match.group(2)
        if values and name in values:
            return values[name]
        return TOKENS[name](rng, arg)

    return _TOKEN.sub(replace, template)


# -- the scenario model ------------------------------------------------------------------------


@dataclass(frozen=True)
class Svc:
    """One node of the service graph with its healthy behaviour."""

    name: str
    type: str
    rpm: float  # requests per minute at a diurnal factor of 1
    avg_ms: float
    p99_ratio: float
    fail_rate: float = 0.0005
    cpu: float | None = None


@dataclass(frozen=True)
class Effect:
    """How the incident (or a minor unrelated blip) changes a node's metrics in one minute."""

    req: float = 1.0
    avg_mult: float = 1.0
    avg_add: float = 0.0
    p99_add: float = 0.0
    fail: float = 0.0
    cpu_add: float = 0.0


NO_EFFECT = Effect()


@dataclass(frozen=True)
class Call:
    """A span template: a service doing an operation, then calling its children in order."""

    service: str
    operation: str
    self_ms: float
    children: tuple[Call, ...] = ()
    jitter: float = 0.28


@dataclass(frozen=True)
class SpanFx:
    """What the incident does to one span."""

    extra_ms: float = 0.0
    self_scale: float = 1.0
    fault: bool = False
    error: bool = False
    status: int | None = None
    keep_children: int | None = None  # children that run before the span fails
    timeout_ms: float | None = None  # the caller gives up after this long


NO_FX = SpanFx()


@dataclass(frozen=True)
class FaultLog:
    """Log lines a service writes at ``rate(minute)`` lines per minute (minute 0 = window start)."""

    service: str
    level: str
    templates: tuple[str, ...]
    rate: Callable[[float], float]


@dataclass(frozen=True)
class OneOff:
    minute: float
    service: str
    level: str
    message: str


@dataclass
class Series:
    service: str
    metric: str
    stat: str
    unit: str
    digits: int
    values: list[float | None] = field(default_factory=list)


Metrics = dict[tuple[str, str, str], Series]
Grid = list[datetime]


def _no_extra(grid: Grid, metrics: Metrics, rng: random.Random) -> list[Series]:
    return []


def _no_fx(call: Call, minute: float, rng: random.Random) -> SpanFx:
    return NO_FX


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    description: str
    window_start: datetime
    front: str
    services: tuple[Svc, ...]
    edges: tuple[tuple[str, str], ...]
    diurnal: tuple[float, float]  # peak hour (UTC) and amplitude
    failure_metric: str  # "errors" (Sum) or "availability" (Average, %)
    effect: Callable[[str, float], Effect]
    routes: tuple[tuple[float, Call], ...]
    noise_logs: dict[str, tuple[tuple[str, str], ...]]
    fault_logs: tuple[FaultLog, ...]
    span_logs: dict[str, str]
    changes: tuple[JsonDict, ...]
    incidents: tuple[JsonDict, ...]
    knowledge: tuple[str, ...]
    event: Callable[[Scenario, Metrics], JsonDict]
    expected: JsonDict
    span_fx: Callable[[Call, float, random.Random], SpanFx] = _no_fx
    fail_status: dict[str, int] = field(default_factory=dict)
    one_off_logs: tuple[OneOff, ...] = ()
    extra_series: Callable[[Grid, Metrics, random.Random], list[Series]] = _no_extra
    extra_directions: dict[str, str] = field(default_factory=dict)

    @property
    def window_end(self) -> datetime:
        return self.window_start + timedelta(minutes=WINDOW_MINUTES)

    @property
    def data_start(self) -> datetime:
        return self.window_start - timedelta(minutes=BASELINE_MINUTES)

    def grid(self) -> Grid:
        total = BASELINE_MINUTES + WINDOW_MINUTES
        return [self.data_start + timedelta(minutes=i) for i in range(total)]

    def rng(self, purpose: str) -> random.Random:
        # One independent stream per output, so editing one output leaves the others unchanged.
        return random.Random(f"{self.seed}:{purpose}")

    def day(self, moment: datetime) -> float:
        return diurnal(self.diurnal[0], self.diurnal[1], moment)

    def svc(self, name: str) -> Svc:
        return next(s for s in self.services if s.name == name)


def minute_of(scenario: Scenario, moment: datetime) -> float:
    """Minutes since the window start (negative in the baseline)."""
    return (moment - scenario.window_start).total_seconds() / 60


# -- metrics -----------------------------------------------------------------------------------


def make_metrics(scenario: Scenario) -> Metrics:
    grid, metrics = scenario.grid(), {}
    for svc in scenario.services:
        for series in _service_series(scenario, svc, grid, scenario.rng(f"metrics:{svc.name}")):
            metrics[(series.service, series.metric, series.stat)] = series
    for series in scenario.extra_series(grid, metrics, scenario.rng("metrics:extra")):
        metrics[(series.service, series.metric, series.stat)] = series
    _drop_some_points(metrics, scenario.rng("metrics:gaps"))
    return metrics


def _service_series(scenario: Scenario, svc: Svc, grid: Grid, rng: random.Random) -> list[Series]:
    failure = scenario.failure_metric
    columns = {
        "p99": Series(svc.name, "latency", "p99", "Milliseconds", 1),
        "avg": Series(svc.name, "latency", "Average", "Milliseconds", 2),
        "requests": Series(svc.name, "requests", "Sum", "Count", 0),
        "failure": Series(
            svc.name,
            failure,
            "Sum" if failure == "errors" else "Average",
            "Count" if failure == "errors" else "Percent",
            0 if failure == "errors" else 3,
        ),
    }
    if svc.cpu is not None:
        columns["cpu"] = Series(svc.name, "cpu", "Average", "Percent", 1)
    drift, wobble, cpu_noise = (
        ar1(rng, len(grid), 0.97, 0.01),
        ar1(rng, len(grid), 0.6, 0.045),
        ar1(rng, len(grid), 0.85, 0.035),
    )
    for i, moment in enumerate(grid):
        effect = scenario.effect(svc.name, minute_of(scenario, moment) + 0.5)
        noise = (drift[i], wobble[i], cpu_noise[i])
        point = _minute_point(svc, effect, scenario.day(moment), noise, rng)
        if failure == "availability":
            point["failure"] = 100.0 * (1 - point["failure"] / max(1.0, point["requests"]))
        for key, series in columns.items():
            series.values.append(point[key])
    return list(columns.values())


def _minute_point(
    svc: Svc, fx: Effect, day: float, noise: tuple[float, float, float], rng: random.Random
) -> dict[str, float]:
    drift, wobble, cpu_noise = noise
    load = day * math.exp(drift) * fx.req
    requests = max(1, round(svc.rpm * load * math.exp(rng.gauss(0, 0.02))))
    base = svc.avg_ms * (1 + 0.15 * (day - 1)) * math.exp(wobble)
    # The incident's own contribution is noisy too, or degraded series would look flat.
    avg = base * fx.avg_mult + fx.avg_add * math.exp(rng.gauss(0, 0.06))
    # Occasional tail spikes (GC pauses, cold starts) keep the healthy p99 honestly noisy.
    spike = 1.7 if rng.random() < 0.012 else 1.0
    p99 = base * svc.p99_ratio * math.exp(rng.gauss(0, 0.1)) * spike
    p99 = max(p99 + fx.p99_add * math.exp(rng.gauss(0, 0.08)), avg * 1.4)
    failures = min(requests, poisson(rng, requests * (svc.fail_rate + fx.fail)))
    point = {"p99": p99, "avg": avg, "requests": float(requests), "failure": float(failures)}
    if svc.cpu is not None:
        cpu = svc.cpu * (0.55 + 0.45 * load) * math.exp(cpu_noise) + fx.cpu_add
        point["cpu"] = min(98.0, max(1.0, cpu))
    return point


def _drop_some_points(metrics: Metrics, rng: random.Random) -> None:
    """A few missing baseline points (empty values), as CloudWatch gaps look in an export."""
    for key in sorted(metrics):
        values = metrics[key].values
        for i in range(BASELINE_MINUTES):
            if rng.random() < 0.002:
                values[i] = None


# -- traces ------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    duration: float
    failed: bool


class _TraceBuilder:
    """Builds one trace's spans (and the log lines tied to them) from a route template."""

    def __init__(self, scenario: Scenario, rng: random.Random, minute: float, start: datetime):
        self.scenario, self.rng, self.minute = scenario, rng, minute
        self.trace_id = f"1-{int(start.timestamp()):08x}-{rng.getrandbits(96):024x}"
        self.spans: list[JsonDict] = []
        self.logs: list[JsonDict] = []

    def run(self, call: Call, parent_id: str | None, start: datetime) -> _Outcome:
        span_id = f"{self.rng.getrandbits(64):016x}"
        record: JsonDict = {"trace_id": self.trace_id, "span_id": span_id, "parent_id": parent_id}
        self.spans.append(record)
        fx = self._effect(call)
        own = call.self_ms * fx.self_scale
        pre = own * 0.6 * math.exp(self.rng.gauss(0, call.jitter))
        post = own * 0.4 * math.exp(self.rng.gauss(0, call.jitter))
        cursor, child_failed = pre, False
        kids = call.children if fx.keep_children is None else call.children[: fx.keep_children]
        for child in kids:
            cursor += self.rng.uniform(0.2, 1.5)
            outcome = self.run(child, span_id, start + timedelta(milliseconds=cursor))
            cursor += outcome.duration
            if outcome.failed:
                child_failed = True
                break
        duration = cursor + post + fx.extra_ms
        fault, error, status = fx.fault, fx.error, fx.status
        if fx.timeout_ms is not None and duration >= fx.timeout_ms:
            duration, fault, status = fx.timeout_ms, True, None
        elif child_failed and not fault:
            fault, status = True, self.scenario.fail_status.get(call.service, 502)
        elif fault and status is None:
            status = 500
        if not (fault or error) and not call.service.endswith("_Database::SQL"):
            status = 200
        record.update(
            service=call.service,
            operation=call.operation,
            start=iso_ms(start),
            duration_ms=round(duration, 1),
            error=error,
            fault=fault,
        )
        if status is not None:
            record["status_code"] = status
        self._span_log(call, record, start + timedelta(milliseconds=duration))
        return _Outcome(duration, fault or error)

    def _effect(self, call: Call) -> SpanFx:
        fx = self.scenario.span_fx(call, self.minute, self.rng)
        healthy_fault = self.rng.random() < self.scenario.svc(call.service).fail_rate * 3
        if fx == NO_FX and healthy_fault and not call.children:
            return SpanFx(fault=True, status=503)
        return fx

    def _span_log(self, call: Call, span: JsonDict, end: datetime) -> None:
        template = self.scenario.span_logs.get(call.service)
        if not span["fault"] or template is None:
            return
        values = {"dur": f"{span['duration_ms']:.0f}", "status": str(span.get("status_code", ""))}
        self.logs.append(
            {
                "timestamp": iso_ms(end),
                "service": call.service,
                "level": "ERROR",
                "message": fill(template, self.rng, values),
                "trace_id": self.trace_id,
                "span_id": span["span_id"],
            }
        )

    def access_log(self, root: JsonDict) -> JsonDict:
        end = at(root["start"]) + timedelta(milliseconds=root["duration_ms"])
        status = root.get("status_code", 200)
        return {
            "timestamp": iso_ms(end),
            "service": root["service"],
            "level": "ERROR" if status >= 500 else "INFO",
            "message": f"{root['operation']} {status} {root['duration_ms']:.0f}ms "
            f"request_id={uuid4(self.rng)}",
            "trace_id": self.trace_id,
            "span_id": root["span_id"],
        }


def make_traces(scenario: Scenario) -> tuple[list[JsonDict], list[JsonDict]]:
    """All spans, and the log lines that carry their trace ids."""
    rng = scenario.rng("traces")
    weights = [weight for weight, _ in scenario.routes]
    routes = [route for _, route in scenario.routes]
    spans: list[JsonDict] = []
    logs: list[JsonDict] = []
    for moment in scenario.grid():
        minute = minute_of(scenario, moment)
        count = poisson(rng, TRACES_PER_MINUTE["window" if minute >= 0 else "baseline"])
        for offset in sorted(rng.uniform(0, 60) for _ in range(count)):
            start = moment + timedelta(seconds=offset)
            builder = _TraceBuilder(scenario, rng, minute + offset / 60, start)
            builder.run(rng.choices(routes, weights)[0], None, start)
            spans.extend(builder.spans)
            logs.extend(builder.logs)
            if rng.random() < 0.3:
                logs.append(builder.access_log(builder.spans[0]))
    return spans, logs


# -- logs --------------------------------------------------------------------------------------


def make_logs(scenario: Scenario, trace_logs: list[JsonDict]) -> list[JsonDict]:
    rng = scenario.rng("logs")
    lines = list(trace_logs)
    loggers = sorted(s.name for s in scenario.services if s.type in LOGGING_TYPES)
    for moment in scenario.grid():
        minute = minute_of(scenario, moment)
        for service in loggers:
            for _ in range(poisson(rng, NOISE_LINES_PER_MINUTE * scenario.day(moment))):
                level, template = rng.choice(scenario.noise_logs[service])
                lines.append(_line(moment, rng, service, level, fill(template, rng)))
        for source in scenario.fault_logs:
            for _ in range(poisson(rng, source.rate(minute + 0.5))):
                message = fill(rng.choice(source.templates), rng)
                lines.append(_line(moment, rng, source.service, source.level, message))
    for one in scenario.one_off_logs:
        when = scenario.window_start + timedelta(minutes=one.minute)
        lines.append(
            {
                "timestamp": iso_ms(when),
                "service": one.service,
                "level": one.level,
                "message": one.message,
            }
        )
    return sorted(lines, key=lambda e: (e["timestamp"], e["service"], e["message"]))


def _line(moment: datetime, rng: random.Random, service: str, level: str, text: str) -> JsonDict:
    when = moment + timedelta(milliseconds=rng.randint(0, 59_999))
    return {"timestamp": iso_ms(when), "service": service, "level": level, "message": text}


# -- records shared by the scenarios -----------------------------------------------------------


def change(
    rng: random.Random,
    when: str,
    kind: str,
    source: str,
    name: str,
    resource: str,
    service: str | None,
    actor: str,
    description: str,
) -> JsonDict:
    return {
        "change_id": uuid4(rng),
        "timestamp": when,
        "kind": kind,
        "event_source": source,
        "event_name": name,
        "resource": resource,
        "service": service,
        "actor": actor,
        "description": description,
    }


def past_incident(
    head: tuple[str, str, str, str, str],
    symptoms: list[str],
    cause: JsonDict,
    fix: tuple[str, str, list[str], int],
) -> JsonDict:
    """``head`` is (id, service, severity, opened_at, title); ``fix`` is (type, summary,
    actions, minutes to resolve)."""
    incident_id, service, severity, opened_at, title = head
    kind, summary, actions, minutes = fix
    return {
        "incident_id": incident_id,
        "service": service,
        "severity": severity,
        "opened_at": opened_at,
        "title": title,
        "symptoms": symptoms,
        "root_cause": cause,
        "resolution": {
            "type": kind,
            "summary": summary,
            "actions": actions,
            "time_to_resolve_minutes": minutes,
        },
    }


def cause(service: str, category: str, component: str | None = None) -> JsonDict:
    found: JsonDict = {"service": service, "category": category}
    if component is not None:
        found["component"] = component
    return found


def doc(doc_id: str, kind: str, services: Sequence[str], updated: str, body: str) -> str:
    header = f"---\nid: {doc_id}\ntype: {kind}\nservices: {', '.join(services)}\n"
    return header + f"updated: {updated}\n---\n" + body.strip() + "\n"


def incident_created(
    scenario: Scenario,
    names: tuple[str, str, str],
    severity: str,
    title: str,
    detections: list[JsonDict],
) -> JsonDict:
    """The control plane's IncidentCreated event; ``names`` are (event id, incident id,
    evidence id)."""
    event_id, incident_id, evidence_id = names
    return {
        "version": "0",
        "id": event_id,
        "source": "opx.incident",
        "detail-type": "IncidentCreated",
        "time": iso(scenario.window_end + timedelta(seconds=42)),
        "region": REGION,
        "resources": [],
        "detail": {
            "incident_id": incident_id,
            "service": scenario.front,
            "severity": severity,
            "window_start": iso(scenario.window_start),
            "window_end": iso(scenario.window_end),
            "title": title,
            "evidence_bundle": {"evidence_id": evidence_id, "detections": detections},
            "budget_usd": 5.0,
        },
    }


def detection(
    detection_id: str, rule: str, severity: str, series: tuple[str, str, str], when: datetime
) -> JsonDict:
    return {
        "detection_id": detection_id,
        "rule_id": rule,
        "severity": severity,
        "metric": "|".join(series),
        "detected_at": iso(when),
    }


def role(name: str, session: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session}"


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


# -- scenario 1: a bad Lambda deployment -------------------------------------------------------

API = "shop-api/prod_AWS::ApiGateway::Stage"
STOREFRONT = "storefront_AWS::ECS::Fargate"
CATALOG = "catalog_AWS::ECS::Fargate"
CART = "cart_AWS::ECS::Fargate"
RECS = "recommendations_AWS::ECS::Fargate"
CHECKOUT = "checkout-handler_AWS::Lambda::Function"
INVENTORY = "inventory_AWS::ECS::Fargate"
PRODUCT_TABLE = "ProductCatalog_AWS::DynamoDB::Table"
SHOP_ORDERS = "ShopOrders_AWS::DynamoDB::Table"
STOCK_TABLE = "Inventory_AWS::DynamoDB::Table"
REDIS = "carts-redis_remote"

CRASH_SHARE = 0.37  # share of checkouts that carry a promotion and hit the broken code path
CHECKOUT_SHARE = 340 / 5200  # checkout invocations per storefront request


def rollout(minute: float) -> float:
    """Share of checkout traffic on the new code: a 10% canary, then everything at minute 19."""
    if minute < 14.5:
        return 0.0
    return 0.1 if minute < 19 else 1.0


def bad_deployment_effect(name: str, minute: float) -> Effect:
    crash = CRASH_SHARE * rollout(minute)
    retry = 1 + 0.3 * crash  # shoppers press "Place order" again
    if name == CHECKOUT:
        return Effect(req=retry, avg_mult=1 - 0.7 * crash, fail=crash)
    if name in (STOREFRONT, API):
        return Effect(req=1 + CHECKOUT_SHARE * 0.3 * crash, fail=CHECKOUT_SHARE * crash * retry)
    if name in (INVENTORY, STOCK_TABLE, SHOP_ORDERS):
        return Effect(req=retry * (1 - crash))
    if name == RECS and 4 <= minute < 7:
        return Effect(cpu_add=18.0, p99_add=35.0)
    if name == CATALOG and -101 <= minute < -99:
        return Effect(avg_add=9.0, p99_add=160.0, cpu_add=6.0)
    return NO_EFFECT


def bad_deployment_span(call: Call, minute: float, rng: random.Random) -> SpanFx:
    if call.service == CHECKOUT and rng.random() < CRASH_SHARE * rollout(minute):
        return SpanFx(fault=True, status=500, keep_children=1, self_scale=0.25)
    return NO_FX


def bad_deployment_routes() -> tuple[tuple[float, Call], ...]:
    table = Call(PRODUCT_TABLE, "Query", 4.5, jitter=0.2)
    browse = Call(
        API,
        "GET /products",
        4,
        (
            Call(
                STOREFRONT,
                "GET /products",
                14,
                (
                    Call(CATALOG, "ListProducts", 8, (table,)),
                    Call(
                        RECS,
                        "GET /recommendations",
                        20,
                        (
                            Call(
                                CATALOG,
                                "BatchGetProducts",
                                6,
                                (Call(PRODUCT_TABLE, "BatchGetItem", 6),),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )
    product = Call(
        API,
        "GET /products/{id}",
        4,
        (
            Call(
                STOREFRONT,
                "GET /products/{id}",
                12,
                (Call(CATALOG, "GetProduct", 7, (Call(PRODUCT_TABLE, "GetItem", 3.5),)),),
            ),
        ),
    )
    cart = Call(
        API,
        "POST /cart/items",
        4,
        (
            Call(
                STOREFRONT,
                "POST /cart/items",
                10,
                (Call(CART, "AddItem", 5, (Call(REDIS, "HSET", 0.8),)),),
            ),
        ),
    )
    checkout = Call(
        API,
        "POST /checkout",
        5,
        (
            Call(
                STOREFRONT,
                "POST /checkout",
                12,
                (
                    Call(
                        CHECKOUT,
                        "Invoke",
                        120,
                        (
                            Call(CART, "GetCart", 4, (Call(REDIS, "HGETALL", 0.9),)),
                            Call(
                                INVENTORY,
                                "ReserveStock",
                                8,
                                (Call(STOCK_TABLE, "UpdateItem", 5.5),),
                            ),
                            Call(SHOP_ORDERS, "PutItem", 7),
                            Call(SHOP_ORDERS, "UpdateItem", 6.5),
                        ),
                    ),
                ),
            ),
        ),
    )
    return ((0.3, browse), (0.22, product), (0.16, cart), (0.32, checkout))


def bad_deployment_logs() -> tuple[dict[str, tuple[tuple[str, str], ...]], tuple[FaultLog, ...]]:
    noise = {
        API: (
            (
                "INFO",
                '{ip} "GET /prod/products?page={int:1-20} HTTP/1.1" 200 {ms:60}ms requestId={rid}',
            ),
            ("INFO", '{ip} "GET /prod/products/{sku} HTTP/1.1" 200 {ms:45}ms requestId={rid}'),
            ("INFO", '{ip} "POST /prod/cart/items HTTP/1.1" 200 {ms:30}ms requestId={rid}'),
        ),
        STOREFRONT: (
            ("INFO", "GET /products/{sku} 200 {ms:40}ms request_id={rid}"),
            ("INFO", "session refreshed user={user} ttl=1800s"),
            (
                "INFO",
                "rendered category page category=c-{int:1-60} items={int:12-48} took {ms:30}ms",
            ),
            (
                "WARN",
                "slow upstream call catalog.ListProducts took {int:650-1800}ms request_id={rid}",
            ),
        ),
        CATALOG: (
            ("INFO", "ListProducts category=c-{int:1-60} returned {int:12-48} items in {ms:12}ms"),
            ("INFO", "GetProduct sku={sku} cache=hit {ms:3}ms"),
            ("INFO", "cache refresh completed entries={int:18000-19000} duration_ms={ms:900}"),
        ),
        CART: (
            ("INFO", "AddItem cart={cart} sku={sku} qty={int:1-4}"),
            ("INFO", "GetCart cart={cart} items={int:1-9} {ms:5}ms"),
        ),
        RECS: (
            (
                "INFO",
                "served {int:4-12} recommendations user={user} model=v{int:40-41} "
                "latency_ms={ms:30}",
            ),
            (
                "WARN",
                "feature store lookup slow user={user} took {int:250-700}ms, using cached vector",
            ),
        ),
        CHECKOUT: (
            ("INFO", lambda_report(205, 1024, "131-176")),
            (
                "INFO",
                "checkout completed order={order} cart={cart} items={int:1-7} "
                "total={amount:80} USD request_id={rid}",
            ),
        ),
        INVENTORY: (
            ("INFO", "ReserveStock sku={sku} qty={int:1-4} remaining={int:3-900}"),
            ("INFO", "reservation sweeper released {int:0-14} expired holds"),
        ),
    }
    crash = "TypeError: Cannot read properties of undefined (reading 'currency')"
    faults = (
        FaultLog(
            CHECKOUT,
            "ERROR",
            (
                f"{crash} at applyDiscount (/var/task/index.js:123:45) at computeTotals "
                "(/var/task/index.js:88:19) request_id={rid} cart={cart}",
                '{"errorType":"TypeError","errorMessage":"Cannot read properties of undefined (reading '
                '\'currency\')","trace":["TypeError: Cannot read properties of undefined (reading '
                '\'currency\')","    at applyDiscount (/var/task/index.js:123:45)"]} '
                "RequestId: {rid}",
            ),
            lambda m: 9.0 * rollout(m),
        ),
        FaultLog(
            STOREFRONT,
            "ERROR",
            (
                'POST /checkout 502 upstream=checkout-handler error="Lambda returned FunctionError '
                'Unhandled" {ms:90}ms request_id={rid} user={user}',
            ),
            lambda m: 4.0 * rollout(m),
        ),
        FaultLog(
            API,
            "ERROR",
            ('{ip} "POST /prod/checkout HTTP/1.1" 502 {ms:110}ms requestId={rid}',),
            lambda m: 3.5 * rollout(m),
        ),
        FaultLog(
            RECS,
            "ERROR",
            (
                "feature store GetRecord failed user={user}: ReadTimeout after 200ms, serving "
                "fallback recommendations",
            ),
            lambda m: 0.03,
        ),
        FaultLog(
            CART,
            "WARN",
            ("redis connection reset (ECONNRESET), reconnected after {ms:40}ms",),
            lambda m: 0.02,
        ),
        FaultLog(
            STOREFRONT,
            "ERROR",
            ("POST /cart/items 500 request_id={rid}: upstream cart timed out after 2000ms",),
            lambda m: 0.015,
        ),
    )
    return noise, faults


def bad_deployment_changes(rng: random.Random) -> tuple[JsonDict, ...]:
    ci = role("ci-deploy-role", "gha-run-8812")
    return (
        change(
            rng,
            "2026-10-06T21:40:55Z",
            "DEPLOYMENT",
            "ecs.amazonaws.com",
            "UpdateService",
            arn("ecs", "service/shop-prod/inventory"),
            INVENTORY,
            ci,
            "Service inventory updated to task definition inventory:88 (image inventory:"
            "2026.10.06-2); rolling deployment, desired count 3",
        ),
        change(
            rng,
            "2026-10-07T03:15:20Z",
            "INFRASTRUCTURE",
            "dynamodb.amazonaws.com",
            "UpdateContinuousBackups",
            arn("dynamodb", "table/ShopOrders"),
            SHOP_ORDERS,
            role("terraform-apply", "tf-run-5512"),
            "Point-in-time recovery enabled",
        ),
        change(
            rng,
            "2026-10-07T09:05:41Z",
            "CONFIG",
            "apigateway.amazonaws.com",
            "UpdateStage",
            f"arn:aws:apigateway:{REGION}::/restapis/k3x9q2m1zd/stages/prod",
            API,
            role("terraform-apply", "tf-run-5519"),
            "Stage prod: default method throttling burstLimit 2000 -> 3000, rateLimit 1000 -> 1500",
        ),
        change(
            rng,
            "2026-10-07T11:52:10Z",
            "DEPLOYMENT",
            "ecs.amazonaws.com",
            "UpdateService",
            arn("ecs", "service/shop-prod/recommendations"),
            RECS,
            ci,
            "Service recommendations updated to task definition recommendations:214 "
            "(image recommendations:2026.10.07-3, model v41); rolling deployment, desired "
            "count 6",
        ),
        change(
            rng,
            "2026-10-07T13:47:32Z",
            "CONFIG",
            "ssm.amazonaws.com",
            "PutParameter",
            arn("ssm", "parameter/prod/catalog/cache-ttl-seconds"),
            CATALOG,
            role("AWSReservedSSO_PlatformEngineer_5f1c2a", "dana.w"),
            "Parameter /prod/catalog/cache-ttl-seconds updated to version 7 (value 120, was 300)",
        ),
        change(
            rng,
            "2026-10-07T14:14:07Z",
            "DEPLOYMENT",
            "lambda.amazonaws.com",
            "UpdateFunctionCode",
            arn("lambda", "function:checkout-handler"),
            CHECKOUT,
            role("ci-deploy-role", "gha-checkout-handler-1842"),
            "Function code updated from s3://shop-artifacts/checkout-handler/1842/"
            "function.zip (CodeSha256 q8Zk2VxB0m4T1cJp9sW3yR7uN6eH5aL0dF2gK8iO4tE=); "
            'pipeline checkout-handler main #1842, commit 4e1c9ab "support multi-currency '
            'promotions in discount calculation"',
        ),
    )


def bad_deployment_incidents() -> tuple[JsonDict, ...]:
    return (
        past_incident(
            (
                "INC-2026-0264",
                INVENTORY,
                "SEV4",
                "2026-04-02T08:12:00Z",
                "Stock counts stale after reservation sweeper stalled",
            ),
            ["inventory reservation holds not released", "products shown out of stock"],
            cause(INVENTORY, "CODE_DEFECT", "reservation-sweeper"),
            (
                "FIX_FORWARD",
                "Sweeper lock was never released after a crash; added a lease timeout.",
                ["Released the sweeper lock manually", "Deployed lease timeout fix"],
                95,
            ),
        ),
        past_incident(
            (
                "INC-2026-0301",
                API,
                "SEV3",
                "2026-05-14T19:30:00Z",
                "429 Too Many Requests on shop-api after stage throttling change",
            ),
            [
                "shop-api 4xx rate up to 6%",
                "429 responses on GET /products",
                "no errors in backend services",
            ],
            cause(API, "CONFIGURATION", "prod stage throttling"),
            (
                "ROLLBACK",
                "A stage throttling limit was set per method instead of per account.",
                ["Restored previous stage throttling settings"],
                31,
            ),
        ),
        past_incident(
            (
                "INC-2026-0377",
                STOREFRONT,
                "SEV2",
                "2026-07-11T12:05:00Z",
                "Checkout failures during summer sale",
            ),
            [
                "storefront 5xx on POST /checkout",
                "checkout-handler errors and duration up",
                "ProvisionedThroughputExceededException for table ShopOrders in checkout-handler "
                "logs",
            ],
            cause(SHOP_ORDERS, "CAPACITY"),
            (
                "MITIGATION",
                "The ShopOrders table ran out of write capacity during the sale.",
                [
                    "Raised provisioned write capacity from 200 to 600 WCU",
                    "Enabled auto scaling with a 70% target",
                ],
                46,
            ),
        ),
        past_incident(
            (
                "INC-2026-0412",
                API,
                "SEV2",
                "2026-08-19T16:42:00Z",
                "Checkout 5xx after checkout-handler release",
            ),
            [
                "5xx on POST /checkout at shop-api rose to 4%",
                "checkout-handler Errors metric jumped minutes after a deployment",
                "TypeError: Cannot read properties of null (reading 'rate') at calculateTax in "
                "checkout-handler logs",
            ],
            cause(CHECKOUT, "DEPLOYMENT", "checkout-handler"),
            (
                "ROLLBACK",
                "A release assumed every cart had a tax region; carts without one threw.",
                [
                    "Pointed the live alias back to the previous version",
                    "Added a null check in calculateTax and redeployed",
                ],
                27,
            ),
        ),
        past_incident(
            (
                "INC-2026-0455",
                CATALOG,
                "SEV3",
                "2026-09-03T10:20:00Z",
                "Slow product pages from a hot partition in ProductCatalog",
            ),
            [
                "catalog p99 latency above 800 ms",
                "storefront p99 latency up",
                "ThrottledRequests on ProductCatalog for one partition key",
            ],
            cause(PRODUCT_TABLE, "CAPACITY"),
            (
                "MITIGATION",
                "A viral product concentrated reads on one partition key.",
                ["Enabled DAX for GetProduct", "Added write sharding for counters"],
                64,
            ),
        ),
        past_incident(
            (
                "INC-2026-0498",
                RECS,
                "SEV3",
                "2026-09-22T15:02:00Z",
                "recommendations tasks OOM-killed after model update",
            ),
            [
                "recommendations task restarts",
                "fallback recommendations served",
                "memory utilisation at 100%",
            ],
            cause(RECS, "DEPLOYMENT", "model v38"),
            (
                "ROLLBACK",
                "The new model did not fit the task memory.",
                ["Rolled back to model v37", "Raised task memory to 4 GB"],
                38,
            ),
        ),
        past_incident(
            (
                "INC-2026-0520",
                CART,
                "SEV2",
                "2026-09-30T02:44:00Z",
                "Cart errors during carts-redis failover",
            ),
            ["cart 5xx for 4 minutes", "ECONNRESET from carts-redis", "ElastiCache failover event"],
            cause(REDIS, "INFRASTRUCTURE"),
            (
                "NO_ACTION",
                "Planned maintenance failover; clients reconnected.",
                ["Confirmed failover completed", "Tuned reconnect backoff"],
                12,
            ),
        ),
        past_incident(
            (
                "INC-2026-0533",
                STOREFRONT,
                "SEV3",
                "2026-10-02T17:55:00Z",
                "storefront CPU saturation after autoscaling minimum lowered",
            ),
            ["storefront CPU above 90%", "storefront p99 latency 1.5 s", "no errors"],
            cause(STOREFRONT, "CONFIGURATION", "autoscaling"),
            (
                "MITIGATION",
                "Minimum task count had been lowered from 6 to 2.",
                ["Restored minimum task count to 6"],
                22,
            ),
        ),
    )


def bad_deployment_knowledge() -> tuple[str, ...]:
    return (
        doc(
            "rb-checkout-lambda-errors",
            "RUNBOOK",
            (CHECKOUT, STOREFRONT, API),
            "2026-09-02",
            """
# Runbook: checkout-handler errors

## Symptoms
5xx on POST /checkout at shop-api and storefront, the Errors metric of the checkout-handler
Lambda function above 1%, unhandled exceptions in the /aws/lambda/checkout-handler log group.

## Diagnosis
1. Compare the start of the errors with the function's deployments (CloudTrail
   UpdateFunctionCode, UpdateAlias) in the previous hour.
2. Group the exceptions by message: a single new exception type that appears right after a
   release points at the code; ProvisionedThroughputExceededException points at the ShopOrders
   table instead (see rb-dynamodb-capacity).
3. Check downstream dependencies (cart, inventory, ShopOrders) for their own errors before
   blaming the function.

## Mitigation
Roll back by pointing the `live` alias at the previous published version:
`aws lambda update-alias --function-name checkout-handler --name live --function-version <prev>`.
Then notify the owning team with the failing request ids.
""",
        ),
        doc(
            "pm-2026-0412-checkout-tax",
            "POSTMORTEM",
            (CHECKOUT, API),
            "2026-08-26",
            """
# Postmortem INC-2026-0412: checkout 5xx after a checkout-handler release

## Summary
On 2026-08-19 a checkout-handler release threw a TypeError in calculateTax for carts without a
tax region. About 4% of checkouts failed for 27 minutes.

## Timeline
16:31 release #1610 deployed by the pipeline. 16:36 errors visible on shop-api.
16:42 incident opened. 16:58 alias rolled back, errors stopped.

## Root cause
A refactor read `cart.taxRegion.rate` without a null check. Unit tests built every cart with a
tax region.

## Lessons
Alarms on the function's own error rate fire earlier than alarms on the API. Canary releases
must watch the canary's error rate, not the aggregate.
""",
        ),
        doc(
            "rb-dynamodb-capacity",
            "RUNBOOK",
            (SHOP_ORDERS, PRODUCT_TABLE, STOCK_TABLE),
            "2026-07-20",
            """
# Runbook: DynamoDB capacity and throttling

## Symptoms
ThrottledRequests above zero, ProvisionedThroughputExceededException in callers, latency of
callers up because the SDK retries with backoff.

## Diagnosis
Compare ConsumedWriteCapacityUnits with the provisioned capacity. A flat line at the limit means
the table is saturated; a single hot key shows throttling while the table total is below it.

## Mitigation
Raise provisioned capacity or switch the table to on-demand; check auto scaling limits.
""",
        ),
        doc(
            "arch-shop-platform",
            "ARCHITECTURE",
            (API, STOREFRONT, CATALOG, CART, RECS, CHECKOUT, INVENTORY),
            "2026-06-30",
            """
# Shop platform architecture

## Request flow
shop-api (API Gateway, stage prod) fronts storefront (ECS). storefront calls catalog, cart,
recommendations and, for POST /checkout, the checkout-handler Lambda function.

## Checkout
checkout-handler reads the cart (cart service, Redis), reserves stock through inventory and
writes the order to the ShopOrders table. Releases go through the CI pipeline, which updates the
function code and shifts the `live` alias with a 10% canary for five minutes.

## Catalog
catalog serves product data from the ProductCatalog table with an in-process cache whose TTL is
the SSM parameter /prod/catalog/cache-ttl-seconds.
""",
        ),
    )


def bad_deployment() -> Scenario:
    services = (
        Svc(API, "AWS::ApiGateway::Stage", 5200, 95, 4.0, 0.0012),
        Svc(STOREFRONT, "AWS::ECS::Fargate", 5200, 82, 4.0, 0.0009, cpu=38),
        Svc(CATALOG, "AWS::ECS::Fargate", 6400, 21, 3.4, 0.0004, cpu=31),
        Svc(CART, "AWS::ECS::Fargate", 2100, 9, 3.2, 0.0003, cpu=22),
        Svc(RECS, "AWS::ECS::Fargate", 1900, 38, 3.6, 0.0015, cpu=44),
        Svc(CHECKOUT, "AWS::Lambda::Function", 340, 215, 2.4, 0.0015),
        Svc(INVENTORY, "AWS::ECS::Fargate", 400, 15, 3.0, 0.0003, cpu=17),
        Svc(PRODUCT_TABLE, "AWS::DynamoDB::Table", 6900, 4.8, 3.3, 0.0001),
        Svc(SHOP_ORDERS, "AWS::DynamoDB::Table", 680, 7.2, 3.0, 0.0001),
        Svc(STOCK_TABLE, "AWS::DynamoDB::Table", 400, 5.5, 3.1, 0.0001),
        Svc(REDIS, "remote", 2500, 0.9, 4.5, 0.0001),
    )
    edges = (
        (API, STOREFRONT),
        (STOREFRONT, CATALOG),
        (STOREFRONT, CART),
        (STOREFRONT, RECS),
        (STOREFRONT, CHECKOUT),
        (CATALOG, PRODUCT_TABLE),
        (RECS, CATALOG),
        (CART, REDIS),
        (CHECKOUT, CART),
        (CHECKOUT, INVENTORY),
        (CHECKOUT, SHOP_ORDERS),
        (INVENTORY, STOCK_TABLE),
    )
    noise, faults = bad_deployment_logs()
    ids = random.Random("bad-deployment:ids")
    return Scenario(
        name="bad-deployment",
        seed=20261007,
        description=(
            "Online shop shop-prod (API Gateway, ECS Fargate, Lambda, DynamoDB, ElastiCache) on "
            "2026-10-07, 11:00-14:30 UTC: 1-minute metrics per X-Ray node, application logs, "
            f"{SAMPLING_NOTE}, CloudTrail changes of the last 24 h, past incidents and runbooks."
        ),
        window_start=at("2026-10-07T14:00:00Z"),
        front=API,
        services=services,
        edges=edges,
        diurnal=(17.0, 0.22),
        failure_metric="errors",
        effect=bad_deployment_effect,
        routes=bad_deployment_routes(),
        noise_logs=noise,
        fault_logs=faults,
        span_logs={
            CHECKOUT: "Unhandled TypeError: Cannot read properties of undefined (reading "
            "'currency') at applyDiscount (/var/task/index.js:123:45) RequestId: {rid}",
            STOREFRONT: "POST /checkout failed: checkout-handler invocation returned {status} "
            "after {dur}ms request_id={rid}",
        },
        span_fx=bad_deployment_span,
        fail_status={STOREFRONT: 502, API: 502},
        one_off_logs=(
            OneOff(-12.4, CATALOG, "INFO", "config reloaded: cache-ttl-seconds 300 -> 120"),
            OneOff(
                14.2,
                CHECKOUT,
                "INFO",
                "INIT_START Runtime Version: nodejs:20.v31 Runtime Version ARN: arn:aws:lambda:"
                "us-east-1::runtime:0f4c1c6e5b8a",
            ),
        ),
        changes=bad_deployment_changes(random.Random("bad-deployment:changes")),
        incidents=bad_deployment_incidents(),
        knowledge=bad_deployment_knowledge(),
        event=lambda sc, _: incident_created(
            sc,
            (uuid4(ids), "INC-2026-1007-0142", "ev-7c2d91f0"),
            "SEV2",
            "Elevated 5xx on shop-api POST /checkout",
            [
                detection(
                    "det-5xx-0142",
                    "shop-api-5xx-rate",
                    "HIGH",
                    (API, "errors", "Sum"),
                    at("2026-10-07T14:22:00Z"),
                )
            ],
        ),
        expected={"service": CHECKOUT, "component": "checkout-handler"},
    )


# -- scenario 2: DynamoDB write throttling after a traffic surge -------------------------------

FRONTEND = "frontend_AWS::ECS::Fargate"
ORDERS_API = "orders-api_AWS::ECS::Fargate"
MENU = "menu_AWS::ECS::Fargate"
ACCOUNTS = "accounts_AWS::ECS::Fargate"
SEARCH = "search_AWS::ECS::Fargate"
PRICING = "pricing_AWS::Lambda::Function"
ORDERS_TABLE = "Orders_AWS::DynamoDB::Table"
MENU_TABLE = "Menu_AWS::DynamoDB::Table"
ACCOUNTS_DB = "accounts@quickbite-aurora_Database::SQL"
OPENSEARCH = "search-quickbite.us-east-1.es.amazonaws.com_remote"
ORDER_EVENTS = "order-events_AWS::SNS::Topic"

THROTTLING_WINDOW = at("2026-10-14T09:11:00Z")
THROTTLING_DIURNAL = (12.0, 0.3)
PROVISIONED_WCU = 60.0
WRITES_PER_ORDER = 2  # PutItem, then UpdateItem
FRONT_ORDER_SHARE = 0.105  # POST /orders among frontend requests before the promotion
API_WRITE_SHARE = 0.38  # CreateOrder among orders-api requests before the promotion
TABLE_WRITE_SHARE = 0.6  # writes among Orders table requests before the promotion


def surge(minute: float) -> float:
    """Extra order traffic from the promotion push: a first wave, then a second cohort."""
    return ramp(minute, 5, 13) + 0.1 * ramp(minute, 13, 21) + 0.45 * ramp(minute, 21, 29.5)


def demand_ratio(minute: float) -> float:
    """Write capacity the Orders table is asked for, as a share of what it is provisioned for."""
    day = diurnal(*THROTTLING_DIURNAL, THROTTLING_WINDOW + timedelta(minutes=minute))
    day_at_start = diurnal(*THROTTLING_DIURNAL, THROTTLING_WINDOW + timedelta(minutes=4))
    return 0.68 * day / day_at_start * (1 + surge(minute))


def throttle_rate(minute: float) -> float:
    """Share of write attempts throttled; burst capacity hides the excess for a minute or two."""
    excess = max(0.0, 1 - 1 / demand_ratio(minute))
    return min(0.7, 1.1 * excess) * ramp(minute, 10, 12)


def exhausted(rate: float, writes: int) -> float:
    """Chance that at least one of ``writes`` writes fails all three attempts."""
    return 1 - (1 - rate**3) ** writes


def sdk_backoff(rng: random.Random, rate: float) -> tuple[float, bool]:
    """Extra milliseconds the SDK spends on throttled attempts (3 attempts, 500 ms base delay
    with equal jitter), and whether every attempt was throttled."""
    extra = 0.0
    for attempt in range(1, 4):
        if rng.random() >= rate:
            return extra, False
        extra += 4.0
        if attempt < 3:
            delay = 500.0 * 2 ** (attempt - 1)
            extra += delay / 2 + rng.uniform(0, delay / 2)
    return extra, True


@dataclass(frozen=True)
class _Mix:
    """Who writes how much at one minute of the surge."""

    surge: float
    rate: float

    @property
    def writes(self) -> float:
        return 1 + self.surge

    @property
    def reads(self) -> float:
        return 1 + 0.4 * self.surge

    def share(self, base: float, reads: float | None = None) -> float:
        other = self.reads if reads is None else reads
        return base * self.writes / (base * self.writes + (1 - base) * other)


Tails = dict[tuple[str, int], tuple[float, float]]


def throttle_tails(seed: int) -> Tails:
    """Mean and p99 latency added per node and minute, simulated request by request."""
    rng = random.Random(f"{seed}:tails")
    profiles = {  # node -> (healthy mean, p99/mean, writes per request)
        ORDERS_TABLE: (5.8, 3.4, 1),
        ORDERS_API: (46.0, 3.2, WRITES_PER_ORDER),
        FRONTEND: (118.0, 3.7, WRITES_PER_ORDER),
    }
    tails: Tails = {}
    for minute in range(WINDOW_MINUTES):
        mix = _Mix(surge(minute + 0.5), throttle_rate(minute + 0.5))
        if mix.rate <= 0:
            continue
        shares = {
            ORDERS_TABLE: mix.share(TABLE_WRITE_SHARE),
            ORDERS_API: mix.share(API_WRITE_SHARE),
            FRONTEND: FRONT_ORDER_SHARE * mix.writes / (1 + 0.3 * mix.surge),
        }
        for node, (mean, ratio, writes) in profiles.items():
            tails[(node, minute)] = _simulate_tail(rng, shares[node], mix.rate, mean, ratio, writes)
    return tails


def _simulate_tail(
    rng: random.Random, share: float, rate: float, mean: float, ratio: float, writes: int
) -> tuple[float, float]:
    sigma = lognormal_sigma(ratio)
    mu = math.log(mean) - sigma * sigma / 2
    healthy, slow = [], []
    for _ in range(4000):
        base = rng.lognormvariate(mu, sigma)
        extra = 0.0
        if rng.random() < share:
            for _ in range(writes):
                delay, failed = sdk_backoff(rng, rate)
                extra += delay
                if failed:
                    break
        healthy.append(base)
        slow.append(base + extra)
    added_mean = sum(slow) / len(slow) - sum(healthy) / len(healthy)
    return added_mean, percentile(slow, 0.99) - percentile(healthy, 0.99)


def throttling_effect(tails: Tails) -> Callable[[str, float], Effect]:
    def effect(name: str, minute: float) -> Effect:
        mix = _Mix(surge(minute), throttle_rate(minute))
        mean_add, p99_add = tails.get((name, math.floor(minute)), (0.0, 0.0))
        lost = exhausted(mix.rate, WRITES_PER_ORDER)
        if name == FRONTEND:
            share = FRONT_ORDER_SHARE * mix.writes / (1 + 0.3 * mix.surge)
            return Effect(
                req=1 + 0.3 * mix.surge, avg_add=mean_add, p99_add=p99_add, fail=share * lost
            )
        if name == ORDERS_API:
            return Effect(
                req=API_WRITE_SHARE * mix.writes + (1 - API_WRITE_SHARE) * mix.reads,
                avg_add=mean_add,
                p99_add=p99_add,
                fail=mix.share(API_WRITE_SHARE) * lost,
            )
        if name == ORDERS_TABLE:
            return Effect(
                req=TABLE_WRITE_SHARE * mix.writes + (1 - TABLE_WRITE_SHARE) * mix.reads,
                avg_add=mean_add,
                p99_add=p99_add,
                fail=mix.share(TABLE_WRITE_SHARE) * mix.rate**3,
            )
        return _throttling_bystander(name, minute, mix, lost)

    return effect


def _throttling_bystander(name: str, minute: float, mix: _Mix, lost: float) -> Effect:
    """Nodes that only see more promotion traffic, plus two unrelated blips."""
    growth = {
        PRICING: 1.0,
        MENU: 0.35,
        MENU_TABLE: 0.45,
        SEARCH: 0.2,
        OPENSEARCH: 0.2,
        ACCOUNTS: 0.25,
        ACCOUNTS_DB: 0.25,
    }
    if name == ORDER_EVENTS:
        return Effect(req=mix.writes * (1 - lost))
    if name == ACCOUNTS and 2 <= minute < 5:
        return Effect(req=1 + 0.25 * mix.surge, cpu_add=21.0)
    if name == SEARCH and -92 <= minute < -88:
        return Effect(cpu_add=26.0, p99_add=90.0)  # warm-up after the 07:39 deployment
    if name == MENU_TABLE and -41 <= minute < -40:
        return Effect(req=1 + 0.45 * mix.surge, p99_add=30.0)
    if name in growth:
        return Effect(req=1 + growth[name] * mix.surge)
    return NO_EFFECT


def throttling_span(call: Call, minute: float, rng: random.Random) -> SpanFx:
    if call.service == ORDERS_TABLE and call.operation in ("PutItem", "UpdateItem"):
        extra, failed = sdk_backoff(rng, throttle_rate(minute))
        return SpanFx(extra_ms=extra, error=True, status=400) if failed else SpanFx(extra_ms=extra)
    return NO_FX


def throttling_series(grid: Grid, metrics: Metrics, rng: random.Random) -> list[Series]:
    """The Orders table's CloudWatch capacity metrics, consistent with its request counts."""
    requests = metrics[(ORDERS_TABLE, "requests", "Sum")].values
    throttled = Series(ORDERS_TABLE, "ThrottledRequests", "Sum", "Count", 0)
    consumed = Series(ORDERS_TABLE, "ConsumedWriteCapacityUnits", "Sum", "Count", 0)
    provisioned = Series(ORDERS_TABLE, "ProvisionedWriteCapacityUnits", "Average", "Count", 0)
    capacity = PROVISIONED_WCU * 60
    for i, count in enumerate(requests):
        minute = i - BASELINE_MINUTES + 0.5
        mix = _Mix(surge(minute), throttle_rate(minute))
        writes = (count or 0.0) * mix.share(TABLE_WRITE_SHARE)
        rate = mix.rate
        attempts = writes * (rate + rate**2 + rate**3)
        stray = rng.randint(1, 4) if rng.random() < 0.02 else 0  # rare micro-bursts
        throttled.values.append(float(round(attempts * math.exp(rng.gauss(0, 0.05))) + stray))
        ratio = demand_ratio(minute)
        used = min(ratio, 1.0) if minute >= 10 else ratio
        saturated = ratio >= 1 and minute >= 10
        noise = rng.uniform(0.965, 0.995) if saturated else math.exp(rng.gauss(0, 0.03))
        consumed.values.append(round(capacity * used * noise))
        provisioned.values.append(PROVISIONED_WCU)
    return [throttled, consumed, provisioned]


def throttling_routes() -> tuple[tuple[float, Call], ...]:
    menu = Call(
        FRONTEND,
        "GET /restaurants/{id}/menu",
        18,
        (Call(MENU, "GetMenu", 9, (Call(MENU_TABLE, "Query", 4.2, jitter=0.2),)),),
    )
    search = Call(
        FRONTEND,
        "GET /search",
        15,
        (Call(SEARCH, "Search", 18, (Call(OPENSEARCH, "POST /restaurants/_search", 36),)),),
    )
    account = Call(
        FRONTEND,
        "GET /account",
        14,
        (Call(ACCOUNTS, "GetProfile", 12, (Call(ACCOUNTS_DB, "SELECT accounts", 3),)),),
    )
    place = Call(
        FRONTEND,
        "POST /orders",
        22,
        (
            Call(ACCOUNTS, "ValidateSession", 6, (Call(ACCOUNTS_DB, "SELECT sessions", 2.5),)),
            Call(
                ORDERS_API,
                "CreateOrder",
                14,
                (
                    Call(PRICING, "Invoke", 26, (Call(MENU_TABLE, "BatchGetItem", 5),)),
                    Call(ORDERS_TABLE, "PutItem", 6, jitter=0.2),
                    Call(ORDERS_TABLE, "UpdateItem", 5.5, jitter=0.2),
                    Call(ORDER_EVENTS, "Publish", 11),
                ),
            ),
        ),
    )
    status = Call(
        FRONTEND,
        "GET /orders/{id}",
        12,
        (Call(ORDERS_API, "GetOrder", 8, (Call(ORDERS_TABLE, "GetItem", 3.8, jitter=0.2),)),),
    )
    return ((0.3, menu), (0.14, search), (0.12, account), (0.3, place), (0.14, status))


def throttling_logs() -> tuple[dict[str, tuple[tuple[str, str], ...]], tuple[FaultLog, ...]]:
    dishes = "pizza.sushi.pho.tacos.ramen.thai"
    noise = {
        FRONTEND: (
            ("INFO", "GET /restaurants/r-{int:1000-9999}/menu 200 {ms:30}ms request_id={rid}"),
            ("INFO", f"GET /search?q={{pick:{dishes}}} 200 {{ms:70}}ms request_id={{rid}}"),
            ("INFO", "POST /orders 201 {ms:120}ms order={order} request_id={rid}"),
            ("INFO", "websocket connections active={int:2100-3900}"),
        ),
        ORDERS_API: (
            (
                "INFO",
                "CreateOrder order={order} restaurant=r-{int:1000-9999} items={int:1-6} "
                "total={amount:28} EUR",
            ),
            (
                "INFO",
                "GetOrder order={order} status={pick:PREPARING.DELIVERING.DELIVERED} {ms:8}ms",
            ),
            ("INFO", "courier assignment queued order={order} eta_min={int:18-45}"),
        ),
        MENU: (
            (
                "INFO",
                "GetMenu restaurant=r-{int:1000-9999} items={int:12-80} "
                "cache={pick:hit.hit.hit.miss} {ms:12}ms",
            ),
            ("INFO", "menu cache warmed restaurants={int:800-1400}"),
        ),
        ACCOUNTS: (
            ("INFO", "session validated user={user} {ms:6}ms"),
            ("INFO", "profile fetched user={user} addresses={int:1-4}"),
        ),
        SEARCH: (
            ("INFO", f'search q="{{pick:{dishes}}}" hits={{int:4-120}} took={{ms:40}}ms'),
            ("WARN", 'opensearch query took {int:600-1400}ms q="{pick:pizza.sushi.pho}"'),
        ),
        PRICING: (
            ("INFO", lambda_report(30, 512, "88-104")),
            (
                "INFO",
                "priced basket items={int:1-6} subtotal={amount:28} "
                "promo={pick:none.none.AUTUMN20}",
            ),
        ),
    }
    throttled = (
        "ProvisionedThroughputExceededException: Rate of requests exceeds the allowed throughput."
    )
    faults = (
        FaultLog(
            ORDERS_API,
            "WARN",
            (
                "DynamoDB PutItem throttled on table Orders, retrying attempt={int:1-2}/3 "
                "backoff_ms={int:250-1000} order={order}",
                "DynamoDB UpdateItem throttled on table Orders, retrying attempt={int:1-2}/3 "
                "backoff_ms={int:250-1000} order={order}",
            ),
            lambda m: 14.0 * throttle_rate(m),
        ),
        FaultLog(
            ORDERS_API,
            "ERROR",
            (
                f"CreateOrder failed order={{order}} after 3 attempts: {throttled} (Service: DynamoDb, "
                "Status Code: 400, Request ID: {awsrid})",
            ),
            lambda m: 45.0 * exhausted(throttle_rate(m), WRITES_PER_ORDER),
        ),
        FaultLog(
            FRONTEND,
            "ERROR",
            (
                'POST /orders 503 {int:1500-2600}ms upstream=orders-api error="Service Unavailable" '
                "request_id={rid}",
            ),
            lambda m: 30.0 * exhausted(throttle_rate(m), WRITES_PER_ORDER),
        ),
        FaultLog(
            FRONTEND,
            "WARN",
            ("slow request POST /orders took {int:900-2400}ms request_id={rid}",),
            lambda m: 6.0 * throttle_rate(m),
        ),
        FaultLog(
            ORDERS_API,
            "INFO",
            ("promo code AUTUMN20 applied order={order} discount={amount:6} EUR",),
            lambda m: 0.2 + 3.0 * surge(m),
        ),
        FaultLog(
            ACCOUNTS,
            "ERROR",
            (
                "password reset email failed user={user}: SES Throttling: Maximum sending rate "
                "exceeded",
            ),
            lambda m: 0.012,
        ),
        FaultLog(
            MENU,
            "WARN",
            ("restaurant r-{int:1000-9999} menu has {int:1-3} items without price, hiding them",),
            lambda m: 0.03,
        ),
    )
    return noise, faults


def throttling_changes(rng: random.Random) -> tuple[JsonDict, ...]:
    ci = role("quickbite-deployer", "codepipeline-4471")
    return (
        change(
            rng,
            "2026-10-13T16:22:40Z",
            "CONFIG",
            "lambda.amazonaws.com",
            "UpdateFunctionConfiguration",
            arn("lambda", "function:pricing"),
            PRICING,
            role("AWSReservedSSO_Developer_2b7f0e", "tomas.r"),
            "Environment variable PRICE_CACHE_TTL_SECONDS changed 60 -> 300",
        ),
        change(
            rng,
            "2026-10-13T19:05:33Z",
            "DEPLOYMENT",
            "ecs.amazonaws.com",
            "UpdateService",
            arn("ecs", "service/quickbite-prod/menu"),
            MENU,
            ci,
            "Service menu updated to task definition menu:131 (image menu:1.84.0); rolling "
            "deployment, desired count 4",
        ),
        change(
            rng,
            "2026-10-14T02:10:05Z",
            "INFRASTRUCTURE",
            "rds.amazonaws.com",
            "ModifyDBCluster",
            arn("rds", "cluster:quickbite-aurora"),
            ACCOUNTS_DB,
            role("terraform-apply", "tf-run-902"),
            "DB cluster parameter group changed to quickbite-aurora-pg15-v3 "
            "(max_connections 800), applied in the maintenance window",
        ),
        change(
            rng,
            "2026-10-14T07:39:12Z",
            "DEPLOYMENT",
            "ecs.amazonaws.com",
            "UpdateService",
            arn("ecs", "service/quickbite-prod/search"),
            SEARCH,
            ci,
            "Service search updated to task definition search:57 (image search:3.12.0, new "
            "ranking model); rolling deployment, desired count 4",
        ),
        change(
            rng,
            "2026-10-14T08:47:51Z",
            "CONFIG",
            "ssm.amazonaws.com",
            "PutParameter",
            arn("ssm", "parameter/quickbite/prod/frontend/image-cdn-host"),
            FRONTEND,
            role("AWSReservedSSO_Developer_2b7f0e", "amira.k"),
            "Parameter /quickbite/prod/frontend/image-cdn-host updated to version 4 "
            "(img2.quickbite.example)",
        ),
    )


def throttling_incidents() -> tuple[JsonDict, ...]:
    return (
        past_incident(
            (
                "INC-2026-0233",
                FRONTEND,
                "SEV2",
                "2026-05-22T11:48:00Z",
                "Order placement failures during lunchtime promotion",
            ),
            [
                "frontend p99 latency above 2 s",
                "frontend availability down to 97%",
                "orders-api 503 on CreateOrder",
                "ProvisionedThroughputExceededException in orders-api logs",
                "ThrottledRequests on the Orders table",
            ],
            cause(ORDERS_TABLE, "CAPACITY"),
            (
                "MITIGATION",
                "A promotion doubled order writes; the Orders table hit its "
                "provisioned write capacity and auto scaling was capped at the same value.",
                [
                    "Raised provisioned WCU from 40 to 120",
                    "Raised the auto scaling maximum",
                    "Asked marketing to announce pushes to the on-call channel",
                ],
                38,
            ),
        ),
        past_incident(
            (
                "INC-2026-0291",
                FRONTEND,
                "SEV3",
                "2026-06-30T18:10:00Z",
                "Slow search results after search release",
            ),
            ["frontend p99 latency up", "search p99 latency 3x", "no errors"],
            cause(SEARCH, "DEPLOYMENT", "ranking model"),
            (
                "ROLLBACK",
                "The new ranking model ran a script query per hit.",
                ["Rolled back search to the previous task definition"],
                41,
            ),
        ),
        past_incident(
            (
                "INC-2026-0310",
                ORDERS_API,
                "SEV2",
                "2026-07-09T12:31:00Z",
                "CreateOrder 500 after orders-api deployment",
            ),
            [
                "orders-api 5xx on CreateOrder",
                "frontend POST /orders errors",
                "JsonMappingException in orders-api logs",
            ],
            cause(ORDERS_API, "DEPLOYMENT", "orders-api"),
            (
                "ROLLBACK",
                "A new field broke request deserialisation for older app versions.",
                ["Rolled back orders-api", "Made the field optional"],
                24,
            ),
        ),
        past_incident(
            (
                "INC-2026-0342",
                ACCOUNTS,
                "SEV3",
                "2026-07-28T20:02:00Z",
                "Login failures: accounts database connections exhausted",
            ),
            ["accounts 5xx", "too many connections from Aurora", "frontend login errors"],
            cause(ACCOUNTS_DB, "CAPACITY"),
            (
                "MITIGATION",
                "A connection leak after pool resize exhausted Aurora connections.",
                ["Restarted accounts tasks", "Lowered pool size per task"],
                33,
            ),
        ),
        past_incident(
            (
                "INC-2026-0358",
                ORDERS_API,
                "SEV3",
                "2026-08-15T12:20:00Z",
                "Pricing Lambda throttled at concurrency limit",
            ),
            [
                "orders-api latency up",
                "TooManyRequestsException: Rate Exceeded from Lambda",
                "pricing Throttles metric above zero",
            ],
            cause(PRICING, "CAPACITY", "reserved concurrency"),
            (
                "MITIGATION",
                "Reserved concurrency of 50 was too low for the lunch peak.",
                ["Raised reserved concurrency to 200"],
                19,
            ),
        ),
        past_incident(
            (
                "INC-2026-0377",
                MENU,
                "SEV3",
                "2026-08-29T18:44:00Z",
                "Menu pages slow: hot partition in Menu table",
            ),
            [
                "menu p99 latency up",
                "ThrottledRequests on Menu table for one restaurant",
                "frontend menu pages slow",
            ],
            cause(MENU_TABLE, "CAPACITY"),
            (
                "MITIGATION",
                "A viral restaurant concentrated reads on one key.",
                ["Enabled the menu cache for that restaurant", "Switched Menu to on-demand"],
                52,
            ),
        ),
        past_incident(
            (
                "INC-2026-0402",
                ORDERS_API,
                "SEV4",
                "2026-09-12T09:05:00Z",
                "Courier notifications delayed: SNS delivery failures",
            ),
            ["order-events delivery failures", "courier webhook 502"],
            cause(ORDER_EVENTS, "DEPENDENCY", "courier webhook"),
            (
                "NO_ACTION",
                "The courier partner's webhook was down; SNS retried.",
                ["Contacted the partner"],
                70,
            ),
        ),
        past_incident(
            (
                "INC-2026-0419",
                FRONTEND,
                "SEV3",
                "2026-09-25T15:15:00Z",
                "frontend tasks restarting: memory leak",
            ),
            ["frontend 5xx spikes every 40 minutes", "frontend memory at 100%"],
            cause(FRONTEND, "CODE_DEFECT", "image resize cache"),
            (
                "FIX_FORWARD",
                "An unbounded image cache leaked memory.",
                ["Bounded the cache", "Deployed frontend 5.2.1"],
                120,
            ),
        ),
    )


def throttling_knowledge() -> tuple[str, ...]:
    return (
        doc(
            "rb-dynamodb-write-throttling",
            "RUNBOOK",
            (ORDERS_TABLE, ORDERS_API),
            "2026-06-05",
            """
# Runbook: DynamoDB write throttling on the Orders table

## Symptoms
ThrottledRequests on the Orders table, ProvisionedThroughputExceededException or "Rate of
requests exceeds the allowed throughput" in orders-api logs, orders-api latency up (the SDK backs
off between attempts) and 503 on CreateOrder once retries are exhausted.

## Diagnosis
Plot ConsumedWriteCapacityUnits (Sum per minute) against the provisioned capacity times 60. A
flat line at the limit means the whole table is saturated; throttling while the table is below
the limit means a hot partition key. Check whether traffic rose (promotions, pushes) and whether
auto scaling has reached its maximum.

## Mitigation
Raise provisioned write capacity (UpdateTable) or switch the table to on-demand. Raise the auto
scaling maximum. Do not restart orders-api: it is a victim, restarts drop in-flight orders.
""",
        ),
        doc(
            "pm-2026-0233-orders-throttling",
            "POSTMORTEM",
            (ORDERS_TABLE, ORDERS_API, FRONTEND),
            "2026-05-29",
            """
# Postmortem INC-2026-0233: order failures during the lunchtime promotion

## Summary
A push promotion doubled order placements. The Orders table was provisioned at 40 WCU with auto
scaling capped at 40; writes were throttled for 38 minutes and 3% of orders failed.

## Timeline
11:30 promotion push sent. 11:36 ThrottledRequests above zero. 11:44 frontend latency alarm.
11:48 incident opened. 12:06 capacity raised, throttling stopped.

## Root cause
Capacity planning did not include promotions; auto scaling reacts in minutes, a push in seconds.

## Lessons
Alert on the table's ThrottledRequests, not only on the frontend. Pre-scale before pushes.
""",
        ),
        doc(
            "pb-frontend-latency",
            "PLAYBOOK",
            (FRONTEND, SEARCH, MENU, ACCOUNTS),
            "2026-07-15",
            """
# Playbook: frontend latency alarm

## First steps
Find which routes are slow (GET /search, menu pages, POST /orders) from the frontend access
logs and traces, then follow the slow spans to the service that spends the time.

## Known causes
Search releases (see INC-2026-0291), the Menu table hot partition, accounts database connection
exhaustion, Orders table throttling during promotions.
""",
        ),
        doc(
            "rb-lambda-concurrency",
            "RUNBOOK",
            (PRICING,),
            "2026-08-20",
            """
# Runbook: Lambda throttling (pricing)

## Symptoms
TooManyRequestsException: Rate Exceeded when orders-api invokes pricing; the pricing Throttles
metric above zero.

## Mitigation
Raise the function's reserved concurrency; check the account concurrency limit.
""",
        ),
    )


def throttling_alarm(scenario: Scenario, metrics: Metrics) -> JsonDict:
    """The CloudWatch alarm on frontend availability, built from the generated datapoints."""
    values = metrics[(FRONTEND, "availability", "Average")].values
    fired = scenario.window_end
    last = [(fired - timedelta(minutes=k), values[-k]) for k in (1, 2, 3)]
    threshold = math.ceil(max(v for _, v in last if v is not None) * 10) / 10
    _check_first_breach(values, threshold)
    points = ", ".join(f"{v:.3f} ({t:%d/%m/%y %H:%M:%S})" for t, v in last if v is not None)
    name = "frontend-availability-low"
    return {
        "version": "0",
        "id": uuid4(random.Random("dynamodb-throttling:event")),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": iso(fired),
        "region": REGION,
        "resources": [arn("cloudwatch", f"alarm:{name}")],
        "detail": {
            "alarmName": name,
            "state": {
                "value": "ALARM",
                "timestamp": alarm_time(fired),
                "reason": (
                    f"Threshold Crossed: 3 out of the last 3 datapoints [{points}] were less than the "
                    f"threshold ({threshold}) (minimum 3 datapoints for OK -> ALARM transition)."
                ),
            },
            "previousState": {
                "value": "OK",
                "timestamp": "2026-10-13T22:04:00.000+0000",
                "reason": "Threshold Crossed: 3 out of the last 3 datapoints were "
                f"not less than the threshold ({threshold}).",
            },
            "configuration": {
                "description": "frontend availability below SLO (1-minute average)",
                "metrics": [
                    {
                        "id": "m1",
                        "returnData": True,
                        "metricStat": {
                            "metric": {
                                "namespace": "QuickBite/Services",
                                "name": "availability",
                                "dimensions": {"ServiceName": FRONTEND},
                            },
                            "period": 60,
                            "stat": "Average",
                        },
                    }
                ],
            },
        },
    }


def _check_first_breach(values: list[float | None], threshold: float) -> None:
    """The alarm must fire exactly at the window end: no earlier run of 3 breaching points."""
    for i in range(len(values) - 3):
        run = values[i : i + 3]
        if all(v is not None and v < threshold for v in run):
            raise SystemExit(f"alarm would have fired earlier (index {i + 2}); retune the surge")


def dynamodb_throttling() -> Scenario:
    services = (
        Svc(FRONTEND, "AWS::ECS::Fargate", 3600, 118, 3.7, 0.0006, cpu=41),
        Svc(ORDERS_API, "AWS::ECS::Fargate", 1000, 46, 3.2, 0.0004, cpu=33),
        Svc(MENU, "AWS::ECS::Fargate", 2500, 21, 3.3, 0.0003, cpu=27),
        Svc(ACCOUNTS, "AWS::ECS::Fargate", 1400, 27, 3.4, 0.0004, cpu=24),
        Svc(SEARCH, "AWS::ECS::Fargate", 1050, 62, 3.6, 0.0006, cpu=46),
        Svc(PRICING, "AWS::Lambda::Function", 400, 33, 2.8, 0.0005),
        Svc(ORDERS_TABLE, "AWS::DynamoDB::Table", 2900, 5.8, 3.4, 0.00005),
        Svc(MENU_TABLE, "AWS::DynamoDB::Table", 3100, 4.4, 3.2, 0.00005),
        Svc(ACCOUNTS_DB, "Database::SQL", 1400, 3.2, 4.0, 0.00002),
        Svc(OPENSEARCH, "remote", 1050, 38, 3.0, 0.0002),
        Svc(ORDER_EVENTS, "AWS::SNS::Topic", 380, 11, 2.6, 0.0001),
    )
    edges = (
        (FRONTEND, ORDERS_API),
        (FRONTEND, MENU),
        (FRONTEND, ACCOUNTS),
        (FRONTEND, SEARCH),
        (ORDERS_API, ORDERS_TABLE),
        (ORDERS_API, PRICING),
        (ORDERS_API, ORDER_EVENTS),
        (PRICING, MENU_TABLE),
        (MENU, MENU_TABLE),
        (ACCOUNTS, ACCOUNTS_DB),
        (SEARCH, OPENSEARCH),
    )
    seed = 20261014
    noise, faults = throttling_logs()
    return Scenario(
        name="dynamodb-throttling",
        seed=seed,
        description=(
            "Food ordering platform quickbite-prod (ECS Fargate, Lambda, DynamoDB, Aurora, "
            "OpenSearch, SNS) on 2026-10-14, 06:11-09:41 UTC: 1-minute metrics per X-Ray node "
            f"plus DynamoDB capacity metrics, application logs, {SAMPLING_NOTE}, CloudTrail "
            "changes of the last 24 h, past incidents and runbooks."
        ),
        window_start=THROTTLING_WINDOW,
        front=FRONTEND,
        services=services,
        edges=edges,
        diurnal=THROTTLING_DIURNAL,
        failure_metric="availability",
        effect=throttling_effect(throttle_tails(seed)),
        routes=throttling_routes(),
        noise_logs=noise,
        fault_logs=faults,
        span_logs={
            ORDERS_API: "CreateOrder failed: ProvisionedThroughputExceededException: Rate of "
            "requests exceeds the allowed throughput. table=Orders attempts=3 "
            "request_id={rid}",
            FRONTEND: "POST /orders {status} after {dur}ms: orders-api unavailable "
            "request_id={rid}",
        },
        span_fx=throttling_span,
        fail_status={ORDERS_API: 503, FRONTEND: 503},
        one_off_logs=(
            OneOff(
                -91.7,
                SEARCH,
                "INFO",
                "starting search 3.12.0 (task definition search:57), "
                "loading ranking model rm-2026-10-12",
            ),
            OneOff(-91.2, SEARCH, "INFO", "ranking model loaded in 31.4s, warming caches"),
        ),
        extra_series=throttling_series,
        extra_directions={
            "ThrottledRequests": "up",
            "ConsumedWriteCapacityUnits": "both",
            "ProvisionedWriteCapacityUnits": "both",
        },
        changes=throttling_changes(random.Random("dynamodb-throttling:changes")),
        incidents=throttling_incidents(),
        knowledge=throttling_knowledge(),
        event=throttling_alarm,
        expected={"service": ORDERS_TABLE},
    )


# -- scenario 3: a slow third-party payment provider -------------------------------------------

WEB = "ticketing-web_AWS::ECS::Fargate"
EVENTS = "events-catalog_AWS::ECS::Fargate"
SEATS = "seat-reservation_AWS::ECS::Fargate"
TICKET_CHECKOUT = "checkout_AWS::ECS::Fargate"
PROFILE = "user-profile_AWS::Lambda::Function"
PAYMENTS = "payment-service_AWS::ECS::Fargate"
PSP = "payments.example-psp.com_remote"
FRAUD = "fraud-check_AWS::Lambda::Function"
RESERVATIONS = "Reservations_AWS::DynamoDB::Table"
EVENTS_DB = "events@ticketing-aurora_Database::SQL"
NOTIFICATIONS = "ticket-notifications_AWS::SQS::Queue"

PSP_TIMEOUT_MS = 5000.0
WEB_CHECKOUT_SHARE = 260 / 4200


def psp_severity(minute: float) -> float:
    """How far the provider has degraded: from healthy at 16:34 to fully slow at 16:38."""
    return ramp(minute, 14, 18)


def psp_precursor(minute: float) -> float:
    """A few slow provider calls in the minutes before the slowdown: the tail goes first."""
    return ramp(minute, 11, 14) * (1 - psp_severity(minute))


def slow_dependency_effect(name: str, minute: float) -> Effect:
    sev, early = psp_severity(minute), psp_precursor(minute)
    timeouts = 0.02 * sev * sev
    # In the precursor about 3% of calls are slow: the p99 of the provider and of its
    # one-call-per-request callers moves, means barely do, the frontend's p99 does not.
    if name == PSP:
        return Effect(
            avg_add=2050 * sev + 45 * early, p99_add=3700 * sev + 1400 * early, fail=timeouts
        )
    if name == PAYMENTS:
        # Threads wait on the provider: inclusive latency rises, CPU dips slightly.
        return Effect(
            avg_add=2050 * sev + 45 * early,
            p99_add=3850 * sev + 1300 * early,
            fail=timeouts,
            cpu_add=-4 * sev,
        )
    if name == TICKET_CHECKOUT:
        return Effect(
            avg_add=2040 * sev + 45 * early, p99_add=3800 * sev + 1200 * early, fail=0.96 * timeouts
        )
    if name == WEB:
        return Effect(
            avg_add=WEB_CHECKOUT_SHARE * 2040 * sev,
            p99_add=2900 * sev**1.5,
            fail=WEB_CHECKOUT_SHARE * 0.96 * timeouts,
        )
    if name == EVENTS and 4 <= minute < 8:
        return Effect(cpu_add=24.0, avg_add=3.0, p99_add=25.0)  # cache rebuild
    if name == EVENTS_DB and -100 <= minute < -98:
        return Effect(p99_add=60.0, avg_add=1.5)
    return NO_EFFECT


def slow_dependency_span(call: Call, minute: float, rng: random.Random) -> SpanFx:
    if call.service != PSP:
        return NO_FX
    sev, early = psp_severity(minute), psp_precursor(minute)
    extra = sev * rng.lognormvariate(math.log(1800), 0.5) if sev > 0 else 0.0
    if early > 0 and rng.random() < 0.03 * early:
        extra += rng.lognormvariate(math.log(1500), 0.3)
    return SpanFx(extra_ms=extra, timeout_ms=PSP_TIMEOUT_MS)


def slow_dependency_routes() -> tuple[tuple[float, Call], ...]:
    browse = Call(
        WEB,
        "GET /events",
        16,
        (Call(EVENTS, "ListEvents", 12, (Call(EVENTS_DB, "SELECT events", 3.5),)),),
    )
    detail = Call(
        WEB,
        "GET /events/{id}",
        14,
        (
            Call(EVENTS, "GetEvent", 9, (Call(EVENTS_DB, "SELECT event", 2.8),)),
            Call(SEATS, "GetSeatMap", 10, (Call(RESERVATIONS, "Query", 5, jitter=0.2),)),
        ),
    )
    profile = Call(WEB, "GET /me", 10, (Call(PROFILE, "Invoke", 17),))
    hold = Call(
        WEB,
        "POST /holds",
        12,
        (Call(SEATS, "HoldSeats", 9, (Call(RESERVATIONS, "TransactWriteItems", 8.5),)),),
    )
    checkout = Call(
        WEB,
        "POST /checkout",
        18,
        (
            Call(
                TICKET_CHECKOUT,
                "PlaceOrder",
                40,
                (
                    Call(
                        SEATS,
                        "ConfirmHold",
                        8,
                        (Call(RESERVATIONS, "UpdateItem", 5.5, jitter=0.2),),
                    ),
                    Call(
                        PAYMENTS,
                        "AuthorizePayment",
                        44,
                        (
                            Call(FRAUD, "Invoke", 34),
                            Call(PSP, "POST /v1/payment_intents", 235, jitter=0.12),
                        ),
                    ),
                    Call(NOTIFICATIONS, "SendMessage", 8),
                ),
            ),
        ),
    )
    return ((0.28, browse), (0.2, detail), (0.11, profile), (0.11, hold), (0.3, checkout))


def slow_dependency_logs() -> tuple[dict[str, tuple[tuple[str, str], ...]], tuple[FaultLog, ...]]:
    cities = "boston.chicago.denver.austin.seattle.miami"
    noise = {
        WEB: (
            (
                "INFO",
                f"GET /events?city={{pick:{cities}}}&page={{int:1-9}} 200 {{ms:60}}ms "
                "request_id={rid}",
            ),
            ("INFO", "GET /events/evt-{int:10000-99999} 200 {ms:50}ms request_id={rid}"),
            ("INFO", "POST /holds 201 {ms:40}ms hold=h-{hex} seats={int:1-6}"),
        ),
        EVENTS: (
            ("INFO", f"ListEvents city={{pick:{cities}}} results={{int:8-60}} {{ms:14}}ms"),
            ("INFO", "GetEvent evt-{int:10000-99999} cache=hit {ms:3}ms"),
        ),
        SEATS: (
            (
                "INFO",
                "HoldSeats event=evt-{int:10000-99999} seats={seat},{seat} hold=h-{hex} ttl=600s",
            ),
            ("INFO", "released {int:0-30} expired holds"),
        ),
        TICKET_CHECKOUT: (
            (
                "INFO",
                "order placed order={order} event=evt-{int:10000-99999} "
                "tickets={int:1-6} total={amount:120} USD request_id={rid}",
            ),
            ("INFO", "confirmation queued order={order} channel={pick:email.email.sms}"),
        ),
        PROFILE: (("INFO", lambda_report(17, 256, "71-84")),),
        PAYMENTS: (
            ("INFO", "payment authorized intent={pi} amount={amount:120} USD provider=example-psp"),
            ("INFO", "fraud score {score} for intent={pi} decision=allow"),
        ),
        FRAUD: (
            ("INFO", lambda_report(34, 1024, "150-190")),
            ("INFO", "score={score} rules_fired={int:0-4} intent={pi}"),
        ),
    }
    endpoint = "POST https://payments.example-psp.com/v1/payment_intents"
    faults = (
        FaultLog(
            PAYMENTS,
            "WARN",
            (f"slow PSP response intent={{pi}} latency_ms={{int:2600-4900}} endpoint={endpoint}",),
            lambda m: 9.0 * psp_severity(m) ** 2,
        ),
        FaultLog(
            PAYMENTS,
            "WARN",
            (f"slow PSP response intent={{pi}} latency_ms={{int:1500-2400}} endpoint={endpoint}",),
            lambda m: 1.5 * psp_precursor(m) + 4.0 * psp_severity(m) * (1 - psp_severity(m)),
        ),
        FaultLog(
            PAYMENTS,
            "ERROR",
            (
                "PSP request timed out after 5000 ms intent={pi} attempt=1: java.net."
                f"SocketTimeoutException: Read timed out ({endpoint})",
            ),
            lambda m: 3.0 * psp_severity(m) ** 2,
        ),
        FaultLog(
            TICKET_CHECKOUT,
            "WARN",
            ("PlaceOrder slow order={order} {split:2600-4900}",),
            lambda m: 5.0 * psp_severity(m) ** 2,
        ),
        FaultLog(
            TICKET_CHECKOUT,
            "ERROR",
            (
                "PlaceOrder failed order={order}: payment-service returned 504 Gateway Timeout after "
                "{int:5010-5090}ms; hold h-{hex} kept until expiry",
            ),
            lambda m: 2.5 * psp_severity(m) ** 2,
        ),
        FaultLog(
            WEB,
            "WARN",
            ("slow request POST /checkout took {int:2900-5200}ms request_id={rid}",),
            lambda m: 4.0 * psp_severity(m) ** 2,
        ),
        FaultLog(
            WEB,
            "ERROR",
            ("POST /checkout 502 {int:5030-5160}ms upstream=checkout request_id={rid}",),
            lambda m: 2.0 * psp_severity(m) ** 2,
        ),
        FaultLog(
            EVENTS,
            "WARN",
            (f"slow query ListEvents city={{pick:{cities}}} took {{int:600-1500}}ms",),
            lambda m: 0.03,
        ),
        FaultLog(
            SEATS,
            "WARN",
            ("ConditionalCheckFailedException on hold h-{hex}: seat {seat} already held",),
            lambda m: 0.05,
        ),
        FaultLog(PROFILE, "ERROR", ("profile not found user={user}",), lambda m: 0.01),
    )
    return noise, faults


def slow_dependency_changes(rng: random.Random) -> tuple[JsonDict, ...]:
    ci = role("ticketing-ci", "build-7310")
    return (
        change(
            rng,
            "2026-11-02T22:30:18Z",
            "DEPLOYMENT",
            "ecs.amazonaws.com",
            "UpdateService",
            arn("ecs", "service/ticketing-prod/seat-reservation"),
            SEATS,
            ci,
            "Service seat-reservation updated to task definition seat-reservation:77; rolling "
            "deployment, desired count 4",
        ),
        change(
            rng,
            "2026-11-03T10:05:47Z",
            "DEPLOYMENT",
            "lambda.amazonaws.com",
            "UpdateFunctionCode",
            arn("lambda", "function:user-profile"),
            PROFILE,
            ci,
            "Function code updated (CodeSha256 Hk3n0Pq7rTz1vB8xW2yD5fG9jL4mN6cQ0sA3eU7iO1k=); "
            'commit 91bd02e "add preferred venues to profile"',
        ),
        change(
            rng,
            "2026-11-03T12:41:09Z",
            "CONFIG",
            "lambda.amazonaws.com",
            "UpdateFunctionConfiguration",
            arn("lambda", "function:fraud-check"),
            FRAUD,
            role("AWSReservedSSO_Developer_8d2e11", "sam.o"),
            "MemorySize 512 -> 1024 MB",
        ),
        change(
            rng,
            "2026-11-03T14:50:02Z",
            "DEPLOYMENT",
            "ecs.amazonaws.com",
            "UpdateService",
            arn("ecs", "service/ticketing-prod/ticketing-web"),
            WEB,
            ci,
            "Service ticketing-web updated to task definition ticketing-web:203 (image "
            "ticketing-web:2026.11.03-1); rolling deployment, desired count 8",
        ),
        change(
            rng,
            "2026-11-03T16:00:14Z",
            "CONFIG",
            "ssm.amazonaws.com",
            "PutParameter",
            arn("ssm", "parameter/ticketing/prod/events-catalog/search-page-size"),
            EVENTS,
            role("AWSReservedSSO_Developer_8d2e11", "li.chen"),
            "Parameter /ticketing/prod/events-catalog/search-page-size updated to version 3 "
            "(value 100, was 50)",
        ),
    )


def slow_dependency_incidents() -> tuple[JsonDict, ...]:
    return (
        past_incident(
            (
                "INC-2026-0188",
                WEB,
                "SEV2",
                "2026-03-21T19:12:00Z",
                "Checkout slow: example-psp degraded",
            ),
            [
                "ticketing-web p99 latency above 3 s",
                "checkout p99 latency above 4 s",
                "payment-service latency up while its CPU is normal",
                "PSP request timeouts in payment-service logs",
                "example-psp status page reported elevated latency",
            ],
            cause(PSP, "DEPENDENCY"),
            (
                "MITIGATION",
                "The payment provider had a regional degradation.",
                [
                    "Routed card payments to the backup provider with flag payments.provider="
                    "backup-psp",
                    "Followed the provider's status page",
                    "Switched back after the provider recovered",
                ],
                52,
            ),
        ),
        past_incident(
            (
                "INC-2026-0247",
                TICKET_CHECKOUT,
                "SEV2",
                "2026-05-02T20:40:00Z",
                "Payment timeouts: payment-service thread pool exhausted after release",
            ),
            [
                "payment-service p99 latency 5 s",
                "checkout 502",
                "RejectedExecutionException in payment-service logs",
                "PSP latency normal",
            ],
            cause(PAYMENTS, "DEPLOYMENT", "http client pool"),
            (
                "ROLLBACK",
                "A release shrank the HTTP client pool from 200 to 20 connections.",
                ["Rolled back payment-service", "Added an alarm on pool wait time"],
                36,
            ),
        ),
        past_incident(
            (
                "INC-2026-0263",
                PAYMENTS,
                "SEV3",
                "2026-05-19T13:05:00Z",
                "fraud-check cold starts after configuration change",
            ),
            ["payment-service latency up by 800 ms", "fraud-check Init Duration high"],
            cause(FRAUD, "CONFIGURATION", "memory setting"),
            (
                "ROLLBACK",
                "Lowering memory made cold starts slow.",
                ["Restored memory", "Enabled provisioned concurrency"],
                28,
            ),
        ),
        past_incident(
            (
                "INC-2026-0301",
                EVENTS,
                "SEV3",
                "2026-06-14T18:30:00Z",
                "Event listings slow: missing index after migration",
            ),
            ["events-catalog p99 latency 2 s", "slow query logs on events database"],
            cause(EVENTS_DB, "CAPACITY", "missing index"),
            (
                "FIX_FORWARD",
                "A migration dropped an index on events(city, date).",
                ["Recreated the index"],
                44,
            ),
        ),
        past_incident(
            (
                "INC-2026-0322",
                SEATS,
                "SEV2",
                "2026-07-08T15:00:00Z",
                "Seat holds failing at on-sale start",
            ),
            [
                "seat-reservation 5xx",
                "ThrottledRequests on Reservations table",
                "ConditionalCheckFailedException storm",
            ],
            cause(RESERVATIONS, "CAPACITY"),
            (
                "MITIGATION",
                "A popular on-sale exceeded the table's capacity.",
                ["Switched Reservations to on-demand"],
                21,
            ),
        ),
        past_incident(
            (
                "INC-2026-0345",
                TICKET_CHECKOUT,
                "SEV4",
                "2026-08-03T07:15:00Z",
                "Ticket e-mails delayed: notification queue backlog",
            ),
            ["ApproximateAgeOfOldestMessage above 30 min on ticket-notifications"],
            cause(NOTIFICATIONS, "DEPENDENCY", "mail consumer"),
            (
                "MITIGATION",
                "The mail consumer was stuck on a poison message.",
                ["Moved the message to the DLQ", "Restarted the consumer"],
                65,
            ),
        ),
        past_incident(
            (
                "INC-2026-0360",
                WEB,
                "SEV2",
                "2026-09-10T17:25:00Z",
                "ticketing-web 5xx after release",
            ),
            ["ticketing-web 5xx on all routes", "errors began right after a deployment"],
            cause(WEB, "DEPLOYMENT", "ticketing-web"),
            (
                "ROLLBACK",
                "A missing environment variable crashed the session middleware.",
                ["Rolled back ticketing-web"],
                18,
            ),
        ),
        past_incident(
            (
                "INC-2026-0371",
                WEB,
                "SEV4",
                "2026-10-01T12:00:00Z",
                "Profile page errors: user-profile throttled",
            ),
            ["GET /me 502", "user-profile Throttles above zero"],
            cause(PROFILE, "CAPACITY", "reserved concurrency"),
            (
                "MITIGATION",
                "Reserved concurrency too low after a marketing e-mail.",
                ["Raised reserved concurrency"],
                15,
            ),
        ),
    )


def slow_dependency_knowledge() -> tuple[str, ...]:
    return (
        doc(
            "rb-psp-degradation",
            "RUNBOOK",
            (PSP, PAYMENTS, TICKET_CHECKOUT),
            "2026-04-02",
            """
# Runbook: payment provider (example-psp) slow or failing

## Symptoms
checkout and payment-service latency up together, PSP read timeouts (5000 ms client timeout) in
payment-service logs, checkout 502/504 on a small share of orders.

## Diagnosis
Split payment-service time into its own work and the outbound call: in traces, compare the
AuthorizePayment span with its POST /v1/payment_intents subsegment. If the subsegment carries the
extra time and payment-service's own time and CPU are normal, the provider is slow. Check the
provider's status page. If payment-service's own time is up, see pm-2026-0247 instead.

## Mitigation
Route card payments to the backup provider (flag payments.provider=backup-psp), open a ticket
with the provider, keep the 5000 ms timeout (raising it only piles up threads).
""",
        ),
        doc(
            "pm-2026-0247-payment-pool",
            "POSTMORTEM",
            (PAYMENTS, TICKET_CHECKOUT),
            "2026-05-09",
            """
# Postmortem INC-2026-0247: payment timeouts after a payment-service release

## Summary
A release reduced the HTTP client pool to 20 connections. Requests queued inside payment-service
for a connection; checkout saw 5 s latencies and 502s for 36 minutes.

## Detection
payment-service p99 latency alarm. The PSP's own latency stayed at 250 ms: the time was spent
waiting inside payment-service before the call.

## Lessons
Alarm on pool wait time. Compare a service's exclusive time with its outbound calls before
blaming a dependency, and before blaming the service.
""",
        ),
        doc(
            "rb-events-catalog-config",
            "RUNBOOK",
            (EVENTS, EVENTS_DB),
            "2026-06-20",
            """
# Runbook: events-catalog configuration changes

## Parameters
search-page-size and cache-ttl-seconds live in SSM under /ticketing/prod/events-catalog/.
Changes are picked up within a minute; a cache rebuild follows and raises CPU for a few minutes.

## When listings are slow
Check the events database for slow queries and recent migrations (see INC-2026-0301).
""",
        ),
        doc(
            "arch-ticketing",
            "ARCHITECTURE",
            (WEB, EVENTS, SEATS, TICKET_CHECKOUT, PAYMENTS, PROFILE),
            "2026-02-11",
            """
# Ticketing platform architecture

## Request flow
ticketing-web serves the site and calls events-catalog, seat-reservation, checkout and the
user-profile Lambda function.

## Checkout
checkout confirms the seat hold, asks payment-service to authorise the payment and queues the
confirmation message. payment-service runs fraud-check (Lambda) and then calls the external
payment provider example-psp over HTTPS with a 5000 ms timeout.
""",
        ),
    )


def slow_dependency() -> Scenario:
    services = (
        Svc(WEB, "AWS::ECS::Fargate", 4200, 108, 3.6, 0.0006, cpu=40),
        Svc(EVENTS, "AWS::ECS::Fargate", 3600, 33, 3.4, 0.0004, cpu=35),
        Svc(SEATS, "AWS::ECS::Fargate", 1150, 24, 3.2, 0.0004, cpu=26),
        Svc(TICKET_CHECKOUT, "AWS::ECS::Fargate", 260, 430, 2.3, 0.0015, cpu=21),
        Svc(PROFILE, "AWS::Lambda::Function", 1300, 18, 3.0, 0.0003),
        Svc(PAYMENTS, "AWS::ECS::Fargate", 255, 335, 1.7, 0.0008, cpu=18),
        Svc(PSP, "remote", 255, 240, 1.33, 0.0006),
        Svc(FRAUD, "AWS::Lambda::Function", 255, 36, 2.6, 0.0003),
        Svc(RESERVATIONS, "AWS::DynamoDB::Table", 1500, 5.2, 3.3, 0.00005),
        Svc(EVENTS_DB, "Database::SQL", 3900, 3.8, 4.2, 0.00002),
        Svc(NOTIFICATIONS, "AWS::SQS::Queue", 240, 8.5, 2.5, 0.0001),
    )
    edges = (
        (WEB, EVENTS),
        (WEB, SEATS),
        (WEB, TICKET_CHECKOUT),
        (WEB, PROFILE),
        (TICKET_CHECKOUT, PAYMENTS),
        (TICKET_CHECKOUT, SEATS),
        (TICKET_CHECKOUT, NOTIFICATIONS),
        (PAYMENTS, PSP),
        (PAYMENTS, FRAUD),
        (SEATS, RESERVATIONS),
        (EVENTS, EVENTS_DB),
    )
    noise, faults = slow_dependency_logs()
    ids = random.Random("slow-dependency:ids")
    return Scenario(
        name="slow-dependency",
        seed=20261103,
        description=(
            "Event ticketing platform ticketing-prod (ECS Fargate, Lambda, DynamoDB, Aurora, SQS, "
            "an external payment provider) on 2026-11-03, 13:20-16:50 UTC: 1-minute metrics per "
            f"X-Ray node, application logs, {SAMPLING_NOTE}, CloudTrail changes of the last 24 h, "
            "past incidents and runbooks."
        ),
        window_start=at("2026-11-03T16:20:00Z"),
        front=WEB,
        services=services,
        edges=edges,
        diurnal=(19.0, 0.25),
        failure_metric="errors",
        effect=slow_dependency_effect,
        routes=slow_dependency_routes(),
        noise_logs=noise,
        fault_logs=faults,
        span_logs={
            PAYMENTS: "AuthorizePayment failed: PSP timeout, returning {status} after {dur}ms "
            "request_id={rid}",
            TICKET_CHECKOUT: "PlaceOrder failed: payment-service returned {status} after {dur}ms "
            "request_id={rid}",
        },
        span_fx=slow_dependency_span,
        fail_status={PAYMENTS: 504, TICKET_CHECKOUT: 502, WEB: 502},
        one_off_logs=(
            OneOff(-19.6, EVENTS, "INFO", "config reloaded: search-page-size 50 -> 100"),
            OneOff(4.2, EVENTS, "INFO", "cache rebuild started: 18234 events"),
            OneOff(7.8, EVENTS, "INFO", "cache rebuild finished in 214s"),
        ),
        changes=slow_dependency_changes(random.Random("slow-dependency:changes")),
        incidents=slow_dependency_incidents(),
        knowledge=slow_dependency_knowledge(),
        event=lambda sc, _: incident_created(
            sc,
            (uuid4(ids), "INC-2026-1103-0087", "ev-3e9a40b2"),
            "HIGH",
            "ticketing-web p99 latency above 2.5 s",
            [
                detection(
                    "det-lat-0087",
                    "ticketing-web-p99-latency",
                    "HIGH",
                    (WEB, "latency", "p99"),
                    at("2026-11-03T16:41:00Z"),
                ),
                detection(
                    "det-lat-0088",
                    "checkout-p99-latency",
                    "MEDIUM",
                    (TICKET_CHECKOUT, "latency", "p99"),
                    at("2026-11-03T16:42:00Z"),
                ),
            ],
        ),
        expected={"service": PSP},
    )


# -- writing -----------------------------------------------------------------------------------


def write_scenario(scenario: Scenario, root: Path) -> None:
    out = root / scenario.name
    if out.exists():
        shutil.rmtree(out)
    bundle = out / "bundle"
    (bundle / "knowledge").mkdir(parents=True)
    metrics = make_metrics(scenario)
    spans, trace_logs = make_traces(scenario)
    _write_json(bundle / "manifest.json", _manifest(scenario, metrics))
    csv_text = _metrics_csv(metrics, scenario.data_start)
    (bundle / "metrics.csv").write_text(csv_text, encoding="utf-8", newline="\n")
    _write_jsonl(bundle / "logs.jsonl", make_logs(scenario, trace_logs))
    _write_jsonl(bundle / "traces.jsonl", spans)
    _write_json(bundle / "graph.json", _graph(scenario))
    _write_jsonl(bundle / "changes.jsonl", sorted(scenario.changes, key=lambda c: c["timestamp"]))
    _write_jsonl(
        bundle / "incidents.jsonl", sorted(scenario.incidents, key=lambda i: i["opened_at"])
    )
    for text in scenario.knowledge:
        doc_id = text.split("\n", 2)[1].removeprefix("id: ")
        (bundle / "knowledge" / f"{doc_id}.md").write_text(text, encoding="utf-8", newline="\n")
    _write_json(out / "event.json", scenario.event(scenario, metrics))
    _write_json(out / "expected.json", scenario.expected)


def _manifest(scenario: Scenario, metrics: Metrics) -> JsonDict:
    names = {metric for _, metric, _ in metrics}
    directions = {**STANDARD_DIRECTIONS, **scenario.extra_directions}
    return {
        "format": "opx-bundle/v1",
        "name": scenario.name,
        "description": scenario.description,
        "metric_directions": {k: v for k, v in sorted(directions.items()) if k in names},
    }


def _graph(scenario: Scenario) -> JsonDict:
    return {
        "nodes": [{"name": s.name, "type": s.type} for s in scenario.services],
        "edges": [{"source": a, "target": b} for a, b in scenario.edges],
    }


def _metrics_csv(metrics: Metrics, start: datetime) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["timestamp", "service", "metric", "stat", "value", "unit"])
    for key in sorted(metrics):
        series = metrics[key]
        for i, value in enumerate(series.values):
            text = "" if value is None else f"{value:.{series.digits}f}"
            writer.writerow(
                [
                    iso(start + timedelta(minutes=i)),
                    series.service,
                    series.metric,
                    series.stat,
                    text,
                    series.unit,
                ]
            )
    return buffer.getvalue()


def _write_json(path: Path, document: JsonDict) -> None:
    path.write_text(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n"
    )


def _write_jsonl(path: Path, rows: Sequence[JsonDict]) -> None:
    text = "".join(
        json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows
    )
    path.write_text(text, encoding="utf-8", newline="\n")


SCENARIOS: tuple[Callable[[], Scenario], ...] = (
    bad_deployment,
    dynamodb_throttling,
    slow_dependency,
)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=EXAMPLES,
        help="folder to write the scenario folders into (default: examples/)",
    )
    root: Path = parser.parse_args(argv).out
    for build in SCENARIOS:
        scenario = build()
        write_scenario(scenario, root)
        size = sum(p.stat().st_size for p in (root / scenario.name).rglob("*") if p.is_file())
        print(f"{scenario.name}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
