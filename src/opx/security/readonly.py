"""Read-only enforcement in code: a botocore event hook on every client refuses, before any
request is built or sent, each operation its role does not allow.

Roles and what they may do:

- ``telemetry``: only the allow-listed read operations of the telemetry services (metrics, logs,
  traces, audit trail, service registry, resource tags, incident history, knowledge base). The
  only call that changes anything is Logs ``StopQuery``, which stops OPX's own Insights query.
- ``store``: DynamoDB reads and writes, but only on the configured checkpoint and results tables.
- ``reasoning``: Bedrock ``InvokeAgent`` and ``Retrieve`` only.
- ``tools-lambda``: Lambda ``Invoke``, synchronous, of the one configured tools function only
  (the executor's way to read telemetry without holding any telemetry permission itself).
- ``publisher``: EventBridge ``PutEvents`` to the configured bus and SNS ``Publish`` to the
  configured topic only.

A refusal raises :class:`WriteRefused` (code ``WRITE_REFUSED``) from the client call; nothing is
sent. The check runs twice: on the API parameters (where table, bus and topic are visible) and
again on the operation just before the HTTP request leaves, so a request that skipped parameter
building is refused as well.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.client import BaseClient

from opx.domain.errors import ErrorCode, OpxError

ClientT = TypeVar("ClientT", bound=BaseClient)
# A check of an allowed operation's parameters: None when fine, else why it is refused.
ParamCheck = Callable[[Mapping[str, Any]], str | None]

TELEMETRY_OPERATIONS: Mapping[str, frozenset[str]] = {
    "cloudwatch": frozenset({"GetMetricData", "ListMetrics", "GetMetricStatistics"}),
    "logs": frozenset(
        {"FilterLogEvents", "StartQuery", "GetQueryResults", "StopQuery", "DescribeLogGroups"}
    ),
    "xray": frozenset({"GetTraceSummaries", "BatchGetTraces", "GetServiceGraph"}),
    "cloudtrail": frozenset({"LookupEvents"}),
    "servicediscovery": frozenset({"ListServices", "GetService", "ListNamespaces"}),
    "resourcegroupstaggingapi": frozenset({"GetResources"}),
    "dynamodb": frozenset({"Query", "GetItem", "DescribeTable"}),
    "bedrock-agent-runtime": frozenset({"Retrieve"}),
}
STORE_READS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "TransactGetItems"}
)
STORE_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
REASONING_OPERATIONS: Mapping[str, frozenset[str]] = {
    "bedrock-agent-runtime": frozenset({"InvokeAgent", "Retrieve"}),
}
_TRANSACT_PARTS = ("Put", "Update", "Delete", "ConditionCheck", "Get")


class WriteRefused(OpxError):
    """An AWS call that the client's role does not allow; it was never sent."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.WRITE_REFUSED, message, retryable=False)


@dataclass(frozen=True)
class ClientPolicy:
    """What one role may call: allowed operations per botocore service name, and parameter
    checks for some of them."""

    role: str
    operations: Mapping[str, frozenset[str]]
    checks: Mapping[tuple[str, str], ParamCheck] = field(default_factory=dict)

    def refusal(self, service: str, operation: str, params: Mapping[str, Any] | None) -> str | None:
        """Why ``service.operation`` with ``params`` is refused, or None if it is allowed.
        ``params`` is None when they are not visible (the check before sending)."""
        if operation not in self.operations.get(service, frozenset()):
            return f"{self.role} clients may not call {service}:{operation}"
        check = self.checks.get((service, operation))
        if check is None or params is None:
            return None
        reason = check(params)
        return None if reason is None else f"{self.role} clients may not {reason}"


def telemetry_policy(history_tables: Collection[str] | None = None) -> ClientPolicy:
    """Read operations of the telemetry services; DynamoDB reads limited to ``history_tables``
    when given."""
    checks: dict[tuple[str, str], ParamCheck] = {}
    if history_tables is not None:
        allowed = frozenset(history_tables)
        for operation in TELEMETRY_OPERATIONS["dynamodb"]:
            checks[("dynamodb", operation)] = _tables_within(allowed, "read")
    return ClientPolicy("telemetry", TELEMETRY_OPERATIONS, checks)


def store_policy(checkpoint_table: str, results_table: str) -> ClientPolicy:
    """DynamoDB reads and writes on the two store tables only."""
    allowed = frozenset({checkpoint_table, results_table})
    checks: dict[tuple[str, str], ParamCheck] = {}
    for operation in STORE_READS:
        checks[("dynamodb", operation)] = _tables_within(allowed, "read")
    for operation in STORE_WRITES:
        checks[("dynamodb", operation)] = _tables_within(allowed, "write")
    return ClientPolicy("store", {"dynamodb": STORE_READS | STORE_WRITES}, checks)


def reasoning_policy() -> ClientPolicy:
    return ClientPolicy("reasoning", REASONING_OPERATIONS)


def tools_lambda_policy(function: str) -> ClientPolicy:
    """Lambda ``Invoke`` (RequestResponse) of ``function`` (a name or ARN) and nothing else."""
    checks: dict[tuple[str, str], ParamCheck] = {("lambda", "Invoke"): _to_function(function)}
    return ClientPolicy("tools-lambda", {"lambda": frozenset({"Invoke"})}, checks)


def publisher_policy(event_bus: str, topic_arn: str | None) -> ClientPolicy:
    """EventBridge ``PutEvents`` to ``event_bus`` and SNS ``Publish`` to ``topic_arn``."""
    operations = {"events": frozenset({"PutEvents"})}
    checks: dict[tuple[str, str], ParamCheck] = {("events", "PutEvents"): _to_bus(event_bus)}
    if topic_arn:
        operations["sns"] = frozenset({"Publish"})
        checks[("sns", "Publish")] = _to_topic(topic_arn)
    return ClientPolicy("publisher", operations, checks)


def guard(client: ClientT, policy: ClientPolicy) -> ClientT:
    """Register ``policy`` on ``client`` (its own event hooks; other clients are unaffected) and
    return the client."""
    service = client.meta.service_model.service_name

    def before_build(params: Mapping[str, Any], model: Any, **_: Any) -> None:
        reason = policy.refusal(service, str(model.name), params)
        if reason is not None:
            raise WriteRefused(reason)

    def before_send(event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        reason = policy.refusal(service, operation, None)
        if reason is not None:
            raise WriteRefused(reason)

    client.meta.events.register("before-parameter-build", before_build, unique_id="opx-readonly")
    client.meta.events.register("before-send", before_send, unique_id="opx-readonly-send")
    return client


# -- parameter checks --------------------------------------------------------------------------


def table_names(params: Mapping[str, Any]) -> set[str]:
    """Every table a DynamoDB request names (single, batch and transaction forms)."""
    names: set[str] = set()
    if isinstance(params.get("TableName"), str):
        names.add(params["TableName"])
    batch = params.get("RequestItems")
    if isinstance(batch, Mapping):
        names.update(str(k) for k in batch)
    for item in params.get("TransactItems") or ():
        if isinstance(item, Mapping):
            names.update(_transact_tables(item))
    return names


def _transact_tables(item: Mapping[str, Any]) -> Iterable[str]:
    for part in _TRANSACT_PARTS:
        body = item.get(part)
        if isinstance(body, Mapping) and isinstance(body.get("TableName"), str):
            yield body["TableName"]


def _table_name(name: str) -> str:
    # A table may be named by its ARN; the name is what follows "table/".
    return name.split(":table/", 1)[1].split("/", 1)[0] if ":table/" in name else name


def _tables_within(allowed: frozenset[str], verb: str) -> ParamCheck:
    def check(params: Mapping[str, Any]) -> str | None:
        named = {_table_name(n) for n in table_names(params)}
        if not named:
            return f"{verb} a request that names no table"
        other = sorted(named - allowed)
        return f"{verb} table {', '.join(other)}" if other else None

    return check


def _to_bus(bus: str) -> ParamCheck:
    def check(params: Mapping[str, Any]) -> str | None:
        entries = params.get("Entries") or []
        for entry in entries:
            target = entry.get("EventBusName") if isinstance(entry, Mapping) else None
            # No bus name means the account's default bus, which is not the configured one.
            name = str(target or "default")
            if name != bus and name.rsplit("/", 1)[-1] != bus:
                return f"put events on bus {name}"
        return None if entries else "put an empty batch of events"

    return check


def _to_function(function: str) -> ParamCheck:
    def check(params: Mapping[str, Any]) -> str | None:
        # Named exactly as configured: another form of the name could point at another account
        # or region, and a qualifier at other code.
        target = str(params.get("FunctionName", ""))
        if target != function or params.get("Qualifier"):
            qualifier = params.get("Qualifier")
            return f"invoke function {target}" + (f" (qualifier {qualifier})" if qualifier else "")
        kind = params.get("InvocationType") or "RequestResponse"
        return None if kind == "RequestResponse" else f"invoke {target} as {kind}"

    return check


def _to_topic(topic_arn: str) -> ParamCheck:
    def check(params: Mapping[str, Any]) -> str | None:
        if params.get("TargetArn") or params.get("PhoneNumber"):
            return "publish to a target or phone number"
        target = params.get("TopicArn")
        return None if target == topic_arn else f"publish to topic {target}"

    return check
