"""Which telemetry belongs to a service: its CloudWatch metrics, log groups, X-Ray node names and
resources, from explicit entries and default rules based on common naming and resource tags
(docs/aws-mapping.md). The same event can then be analysed in any account by changing only the
mapping file, never the code.

Templates may use ``{service}`` (the service name as OPX knows it, e.g. an X-Ray node name such
as ``search_AWS::ECS::Fargate``) and ``{name}`` (that name without an X-Ray ``_<type>`` suffix,
e.g. ``search``). Dimension values and resource rules may use ``*`` as a wildcard.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

# An X-Ray node name "<name>_<type>"; the type is AWS::… or one of X-Ray's client/remote kinds.
_XRAY_NODE = re.compile(r"^(?P<name>.+)_(?P<type>(?:[A-Za-z0-9]+::)+[A-Za-z0-9]+|remote|client)$")
# CloudWatch Logs group names: letters, digits and _ - / . # only (so never a wildcard).
LOG_GROUP_NAME = re.compile(r"[A-Za-z0-9_\-/.#]{1,512}")
# X-Ray's caller node stands for the clients of a service, not the service itself.
CLIENT_TYPE = "client"


class MappingError(ValueError):
    """A mapping entry OPX cannot use; the message names it."""


@dataclass(frozen=True)
class MetricStat:
    """One CloudWatch metric and statistic; ``label`` is the metric name OPX reports."""

    name: str
    stat: str
    unit: str = ""
    label: str = ""

    @property
    def reported(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class MetricTemplate:
    """Metrics of one namespace whose dimensions match ``dimensions`` (templates allowed)."""

    namespace: str
    dimensions: tuple[tuple[str, str], ...]
    metrics: tuple[MetricStat, ...]

    def render(self, service: str) -> MetricTemplate:
        dims = tuple((k, render(v, service)) for k, v in self.dimensions)
        return MetricTemplate(self.namespace, dims, self.metrics)

    @property
    def exact(self) -> bool:
        """True when every dimension value is known (no wildcard), so no lookup is needed."""
        return all("*" not in v for _, v in self.dimensions)


@dataclass(frozen=True)
class ServiceEntry:
    """What the mapping file says about one service."""

    name: str
    metrics: tuple[MetricTemplate, ...] = ()
    log_groups: tuple[str, ...] = ()
    xray_names: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    use_defaults: bool = True


def _m(name: str, stat: str, unit: str = "") -> MetricStat:
    return MetricStat(name, stat, unit)


# Front doors (load balancer, API, function) first: get_traffic reads these.
DEFAULT_METRICS: tuple[MetricTemplate, ...] = (
    MetricTemplate(
        "AWS/ApplicationELB",
        (("LoadBalancer", "app/{name}/*"),),
        (
            _m("RequestCount", "Sum", "Count"),
            _m("HTTPCode_Target_5XX_Count", "Sum", "Count"),
            _m("HTTPCode_ELB_5XX_Count", "Sum", "Count"),
            _m("TargetResponseTime", "Average", "Seconds"),
            _m("TargetResponseTime", "p99", "Seconds"),
        ),
    ),
    MetricTemplate(
        "AWS/ApiGateway",
        (("ApiName", "{name}"),),
        (
            _m("Count", "Sum", "Count"),
            _m("4XXError", "Sum", "Count"),
            _m("5XXError", "Sum", "Count"),
            _m("Latency", "Average", "Milliseconds"),
            _m("Latency", "p99", "Milliseconds"),
        ),
    ),
    MetricTemplate(
        "AWS/Lambda",
        (("FunctionName", "{name}"),),
        (
            _m("Invocations", "Sum", "Count"),
            _m("Errors", "Sum", "Count"),
            _m("Throttles", "Sum", "Count"),
            _m("Duration", "Average", "Milliseconds"),
            _m("Duration", "p99", "Milliseconds"),
            _m("ConcurrentExecutions", "Maximum", "Count"),
        ),
    ),
    MetricTemplate(
        "AWS/ECS",
        (("ClusterName", "*"), ("ServiceName", "{name}")),
        (
            _m("CPUUtilization", "Average", "Percent"),
            _m("MemoryUtilization", "Average", "Percent"),
        ),
    ),
    MetricTemplate(
        "AWS/DynamoDB",
        (("TableName", "{name}"),),
        (
            _m("ThrottledRequests", "Sum", "Count"),
            _m("ReadThrottleEvents", "Sum", "Count"),
            _m("WriteThrottleEvents", "Sum", "Count"),
            _m("SystemErrors", "Sum", "Count"),
            _m("ConsumedWriteCapacityUnits", "Sum", "Count"),
            _m("ConsumedReadCapacityUnits", "Sum", "Count"),
        ),
    ),
    MetricTemplate(
        "AWS/SQS",
        (("QueueName", "{name}"),),
        (
            _m("ApproximateAgeOfOldestMessage", "Maximum", "Seconds"),
            _m("ApproximateNumberOfMessagesVisible", "Maximum", "Count"),
        ),
    ),
)
DEFAULT_LOG_GROUPS = (
    "/aws/lambda/{name}",
    "/ecs/{name}",
    "/aws/ecs/{name}",
    "/aws/apigateway/{name}",
    "/aws/vendedlogs/{name}",
)
# Resource names that belong to a service by naming convention alone.
DEFAULT_NAMING = ("{name}", "{name}-*", "*-{name}", "/{name}/*", "{name}/*")
# Resource tags whose value names the service a resource belongs to, most specific first.
DEFAULT_TAG_KEYS = ("opx:service", "service", "Service", "app", "application")


def split_node(node: str) -> tuple[str, str | None]:
    """An X-Ray node name split into its name and type (None when it has no type suffix)."""
    match = _XRAY_NODE.match(node)
    return (node, None) if match is None else (match.group("name"), match.group("type"))


def node_name(name: str, node_type: str | None) -> str:
    """The service name OPX gives an X-Ray node: ``<name>_<type>``, or the name alone."""
    return f"{name}_{node_type}" if node_type else name


def render(template: str, service: str) -> str:
    return template.replace("{service}", service).replace("{name}", split_node(service)[0])


def resource_forms(resource: str) -> tuple[str, ...]:
    """The forms a naming rule is matched against: the resource itself and, for an ARN, each
    segment of its resource part after the type, and those segments as a path
    (``arn:…:parameter/shop/db-url`` → ``shop``, ``db-url``, ``/shop/db-url``)."""
    if not resource.startswith("arn:"):
        return (resource,)
    segments = [s for s in re.split(r"[:/]", resource.split(":", 5)[-1]) if s][1:]
    path = "/" + "/".join(segments) if segments else ""
    return tuple(dict.fromkeys((resource, *segments, *([path] if path else []))))


@dataclass(frozen=True)
class ServiceMapping:
    """Explicit entries plus default rules; resolves telemetry for any service name."""

    services: Mapping[str, ServiceEntry] = field(default_factory=dict)
    metrics: tuple[MetricTemplate, ...] = DEFAULT_METRICS
    log_groups: tuple[str, ...] = DEFAULT_LOG_GROUPS
    naming: tuple[str, ...] = DEFAULT_NAMING
    tag_keys: tuple[str, ...] = DEFAULT_TAG_KEYS
    metric_directions: Mapping[str, str] = field(default_factory=dict)

    @property
    def configured(self) -> tuple[str, ...]:
        return tuple(sorted(self.services))

    def _entry(self, service: str) -> ServiceEntry:
        return self.services.get(service) or ServiceEntry(service)

    def metric_templates(self, service: str) -> tuple[tuple[MetricTemplate, bool], ...]:
        """``(template, explicit)`` pairs: the service's own templates, then the defaults
        (unless turned off), rendered for ``service``."""
        entry = self._entry(service)
        defaults = self.metrics if entry.use_defaults else ()
        return tuple((t.render(service), True) for t in entry.metrics) + tuple(
            (t.render(service), False) for t in defaults
        )

    def log_groups_for(self, service: str) -> tuple[tuple[str, bool], ...]:
        """``(log group, explicit)`` pairs; default groups that are not valid names are
        skipped (explicit ones were checked when the mapping was loaded)."""
        entry = self._entry(service)
        found = [(g, True) for g in entry.log_groups]
        if entry.use_defaults:
            rendered = (render(t, service) for t in self.log_groups)
            found += [(g, False) for g in rendered if LOG_GROUP_NAME.fullmatch(g)]
        seen: dict[str, bool] = {}
        for group, explicit in found:
            seen[group] = seen.get(group, False) or explicit
        return tuple(seen.items())

    def xray_names_for(self, service: str) -> tuple[str, ...]:
        entry = self._entry(service)
        return entry.xray_names or (service,)

    def service_for_node(self, name: str, node_type: str | None, known: Collection[str]) -> str:
        """The service an X-Ray node (or segment) is reported under: a configured service that
        lists it (by full node name, or by bare name for any type but the client node), else a
        known service of that full or bare name, else its own node name."""
        full = node_name(name, node_type)
        bare_ok = node_type != CLIENT_TYPE
        for service in self.configured:
            names = self.services[service].xray_names
            if full in names or (bare_ok and name in names):
                return service
        if full in known:
            return full
        if bare_ok and name in known:
            return name
        return full

    def service_for_resource(
        self, resource: str, tags: Mapping[str, str], known: Iterable[str]
    ) -> str | None:
        """The service a changed resource belongs to: explicit resource rules, then the first
        configured tag key present, then naming rules over the known services (the longest,
        i.e. most specific, matching name wins; ties by name)."""
        forms = resource_forms(resource)
        for service in self.configured:
            rules = self.services[service].resources
            if any(_matches(rule, forms) for rule in rules):
                return service
        for key in self.tag_keys:
            value = tags.get(key)
            if value:
                return self._known_by_tag(value, known)
        return self._by_naming(forms, known)

    def _known_by_tag(self, value: str, known: Iterable[str]) -> str:
        # A tag usually holds the bare name; report the known service it stands for.
        for service in sorted(set(known) | set(self.configured)):
            if value in (service, split_node(service)[0]):
                return service
        return value

    def _by_naming(self, forms: tuple[str, ...], known: Iterable[str]) -> str | None:
        best: tuple[int, str] | None = None
        for service in sorted(set(known) | set(self.configured)):
            bare = split_node(service)[0]
            rules = self.naming if self._entry(service).use_defaults else ()
            if any(_matches(render(rule, service), forms) for rule in rules):
                rank = (-len(bare), service)
                best = rank if best is None or rank < best else best
        return None if best is None else best[1]


def _matches(rule: str, forms: tuple[str, ...]) -> bool:
    return any(fnmatchcase(form, rule) for form in forms)
