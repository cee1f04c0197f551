"""The execution store on DynamoDB: one item per execution, claimed with conditional writes.

Item (table ``opx-executions`` by default, partition key ``execution_id`` (S), no sort key):
``incident_id``, ``status``, ``reason``, ``attempt``, ``lease_owner``, ``lease_expires_at``,
``fencing_token``, ``result`` (the ExecutionResult JSON, zlib-compressed, binary),
``result_attempt``, ``bundle``, ``created_at``, ``updated_at`` and ``ttl`` (epoch seconds).

A claim reads the item with a strongly consistent read, decides with
:func:`opx.durability.store.plan_claim`, and writes on the condition that the fencing token it
read is unchanged (or, for a new execution, that no item exists): two workers that read the same
state cannot both win. ``finish`` and ``release`` write only while the item still carries the
lease's owner and token. Results are written only by the holder of the lease, so a stale holder
whose lease expired and was taken over can never overwrite a newer attempt.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from opx.domain.result import ExecutionResult, ExecutionStatus, Reason
from opx.durability.dynamodb_io import create_and_wait
from opx.durability.store import (
    Claim,
    ClaimOutcome,
    ClaimPlan,
    ExecutionRecord,
    Lease,
    StoreUnavailable,
    plan_claim,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_RESULTS_TABLE = "opx-executions"
DEFAULT_TTL_SECONDS = 90 * 24 * 3600
# Leaves room for the other attributes under DynamoDB's 400 KB item limit.
MAX_RESULT_BYTES = 350 * 1024
_CLAIM_TRIES = 8
_OWNER_AND_TOKEN = "lease_owner = :owner AND fencing_token = :token"

Item = dict[str, Any]


def create_results_table(
    client: DynamoDBClient,
    table_name: str = DEFAULT_RESULTS_TABLE,
    *,
    timeout_s: float = 120.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Create the results table (key schema only, on demand) and wait until it is ACTIVE.
    For tests and local development: TTL, PITR and encryption belong to the infrastructure."""
    create_and_wait(
        client, table_name, (("execution_id", "HASH"),), timeout_s=timeout_s, sleep=sleep
    )


class DynamoDBExecutionStore:
    """Executions in a DynamoDB table; see the module docstring for the item and the rules."""

    def __init__(
        self,
        table_name: str = DEFAULT_RESULTS_TABLE,
        *,
        client: DynamoDBClient,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._ttl_seconds = ttl_seconds

    def claim(
        self,
        execution_id: str,
        incident_id: str,
        owner: str,
        *,
        now: float,
        expires_at: float,
        force: bool = False,
        bundle: str | None = None,
    ) -> Claim:
        """Apply the delivery rule; a lost race re-reads and decides again."""
        for _ in range(_CLAIM_TRIES):
            record = self.get(execution_id)
            plan = plan_claim(record, owner, now, force)
            if plan.outcome is not ClaimOutcome.CLAIMED:
                assert record is not None
                return Claim(plan.outcome, record, resume=False)
            lease = Lease(owner, expires_at, (record.fencing_token if record else 0) + 1)
            if self._take(execution_id, incident_id, record, plan, lease, bundle, now):
                claimed = self.get(execution_id)
                if claimed is None:
                    raise StoreUnavailable(f"execution {execution_id} vanished after its claim")
                return Claim(ClaimOutcome.CLAIMED, claimed, plan.resume)
        raise StoreUnavailable(
            f"execution {execution_id}: the claim lost {_CLAIM_TRIES} races in a row"
        )

    def _take(
        self,
        execution_id: str,
        incident_id: str,
        record: ExecutionRecord | None,
        plan: ClaimPlan,
        lease: Lease,
        bundle: str | None,
        now: float,
    ) -> bool:
        if record is None:
            item = {
                "execution_id": {"S": execution_id},
                "incident_id": {"S": incident_id},
                "status": {"S": ExecutionStatus.IN_PROGRESS.value},
                "attempt": {"N": "1"},
                "lease_owner": {"S": lease.owner},
                "lease_expires_at": {"N": _num(lease.expires_at)},
                "fencing_token": {"N": str(lease.token)},
                "created_at": {"N": _num(now)},
                "updated_at": {"N": _num(now)},
                "ttl": {"N": str(int(now) + self._ttl_seconds)},
                **({"bundle": {"S": bundle}} if bundle else {}),
            }
            return self._conditional(
                lambda: self._client.put_item(
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression="attribute_not_exists(execution_id)",
                )
            )
        names = "SET #s = :running, attempt = :attempt, lease_owner = :owner, "
        names += "lease_expires_at = :expires, fencing_token = :new, updated_at = :now, #ttl = :ttl"
        values: Item = {
            ":running": {"S": ExecutionStatus.IN_PROGRESS.value},
            ":attempt": {"N": str(plan.attempt)},
            ":owner": {"S": lease.owner},
            ":expires": {"N": _num(lease.expires_at)},
            ":new": {"N": str(lease.token)},
            ":read": {"N": str(record.fencing_token)},
            ":now": {"N": _num(now)},
            ":ttl": {"N": str(int(now) + self._ttl_seconds)},
        }
        if bundle:
            names += ", bundle = :bundle"
            values[":bundle"] = {"S": bundle}
        return self._conditional(
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key={"execution_id": {"S": execution_id}},
                UpdateExpression=names + " REMOVE reason",
                ConditionExpression="fencing_token = :read",
                ExpressionAttributeNames={"#s": "status", "#ttl": "ttl"},
                ExpressionAttributeValues=values,
            )
        )

    def finish(self, execution_id: str, lease: Lease, result: ExecutionResult, now: float) -> bool:
        """Store the result and free the lease, if the lease is still this holder's."""
        blob = zlib.compress(result.model_dump_json().encode("utf-8"), 6)
        if len(blob) > MAX_RESULT_BYTES:
            raise StoreUnavailable(
                f"execution {execution_id}: the result is {len(blob)} bytes compressed, over "
                f"the {MAX_RESULT_BYTES}-byte item budget of {self.table_name}"
            )
        return self._end(
            execution_id,
            lease,
            result.status,
            result.reason,
            now,
            extra_set=", #result = :result, result_attempt = attempt",
            extra_values={":result": {"B": blob}},
        )

    def release(
        self,
        execution_id: str,
        lease: Lease,
        status: ExecutionStatus,
        reason: Reason | None,
        now: float,
    ) -> bool:
        """Give the lease up with a non-final status, if it is still this holder's."""
        return self._end(execution_id, lease, status, reason, now)

    def _end(
        self,
        execution_id: str,
        lease: Lease,
        status: ExecutionStatus,
        reason: Reason | None,
        now: float,
        *,
        extra_set: str = "",
        extra_values: Mapping[str, Any] | None = None,
    ) -> bool:
        values: Item = {
            ":status": {"S": status.value},
            ":now": {"N": _num(now)},
            ":owner": {"S": lease.owner},
            ":token": {"N": str(lease.token)},
            **(extra_values or {}),
        }
        update = f"SET #s = :status, updated_at = :now{extra_set}"
        if reason is not None:
            update += ", reason = :reason"
            values[":reason"] = {"S": reason.value}
        update += " REMOVE lease_owner, lease_expires_at"
        if reason is None:
            update += ", reason"
        return self._conditional(
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key={"execution_id": {"S": execution_id}},
                UpdateExpression=update,
                ConditionExpression=_OWNER_AND_TOKEN,
                ExpressionAttributeNames={
                    "#s": "status",
                    **({"#result": "result"} if extra_set else {}),
                },
                ExpressionAttributeValues=values,
            )
        )

    def get(self, execution_id: str) -> ExecutionRecord | None:
        answer = self._call(
            lambda: self._client.get_item(
                TableName=self.table_name,
                Key={"execution_id": {"S": execution_id}},
                ConsistentRead=True,
            )
        )
        item = answer.get("Item")
        return None if item is None else _record(item)

    def list(self, limit: int = 50, status: str | None = None) -> list[ExecutionRecord]:
        """Newest first. A scan: meant for operators' occasional listing, not a hot path."""
        records: list[ExecutionRecord] = []
        start: Item | None = None
        while True:
            kwargs: dict[str, Any] = {"TableName": self.table_name}
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self._call(functools.partial(self._client.scan, **kwargs))
            records.extend(_record(item) for item in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        if status:
            records = [r for r in records if r.status == status]
        records.sort(key=lambda r: (-r.updated_at, r.execution_id))
        return records[:limit]

    def _conditional(self, write: Callable[[], object]) -> bool:
        try:
            self._call(write)
        except _ConditionFailed:
            return False
        return True

    def _call(self, request: Callable[[], Any]) -> Any:
        try:
            return request()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed from exc
            raise StoreUnavailable(f"execution store {self.table_name}: {code}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"execution store {self.table_name}: {exc}") from exc


class _ConditionFailed(Exception):
    """A conditional write lost: someone else changed the item first."""


def _num(value: float) -> str:
    return repr(float(value))


def _text(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


def _number(item: Item, name: str) -> float | None:
    value = item.get(name)
    return None if value is None else float(value["N"])


def _record(item: Item) -> ExecutionRecord:
    blob = item.get("result")
    result = None
    if blob is not None:
        result = ExecutionResult.model_validate_json(zlib.decompress(bytes(blob["B"])))
    result_attempt = _number(item, "result_attempt")
    return ExecutionRecord(
        execution_id=str(item["execution_id"]["S"]),
        incident_id=str(item["incident_id"]["S"]),
        status=str(item["status"]["S"]),
        reason=_text(item, "reason"),
        attempt=int(_number(item, "attempt") or 1),
        lease_owner=_text(item, "lease_owner"),
        lease_expires_at=_number(item, "lease_expires_at"),
        result=result,
        created_at=_number(item, "created_at") or 0.0,
        updated_at=_number(item, "updated_at") or 0.0,
        fencing_token=int(_number(item, "fencing_token") or 0),
        result_attempt=None if result_attempt is None else int(result_attempt),
        bundle=_text(item, "bundle"),
    )
