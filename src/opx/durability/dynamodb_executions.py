"""The execution store on DynamoDB: one item per execution, claimed with conditional writes.

Item (table ``opx-executions`` by default, partition key ``execution_id`` (S), no sort key):
``incident_id``, ``status``, ``reason``, ``attempt``, ``lease_owner``, ``lease_expires_at``,
``fencing_token``, ``result`` (the ExecutionResult JSON, zlib-compressed, binary),
``result_attempt``, ``bundle``, ``created_at``, ``updated_at``, ``ttl`` (epoch seconds), and,
once the result is being published, one marker per delivery channel (``events``, ``sns``):
``delivery_<channel>_attempt``, ``delivery_<channel>_state`` (PENDING or DONE) and
``delivery_<channel>_at``.

The channel markers are attributes of the execution's own item rather than items of their own:
a claim must check, in the same atomic conditional write, that the result of that attempt is the
one stored (``result_attempt``), which a separate item could only do with a transaction; and the
key schema, the scan behind ``list`` and the item's ``ttl`` stay as they are (tables made by
:func:`create_results_table` or by the infrastructure keep working unchanged). A few small
attributes per channel do not matter against the 400 KB item limit. Earlier versions wrote a
single ``delivery_attempt``/``delivery_state``/``delivery_at`` marker for every channel at once;
it is no longer written, but a claim still honours it for every channel, so an upgrade never
publishes a result twice.

A result whose compressed JSON is over 350 KB (so the item would near DynamoDB's 400 KB limit)
is split into chunk items of 350,000 bytes, written before the item that references them: the
item then holds ``result_chunks`` (M: ``key``, ``parts``, ``length``, ``digest``) instead of
``result``. Chunk ``i`` has the partition key ``{key}#{i:05d}``, where ``key`` is
``{execution_id}#result#{fencing token}#{digest}``, and the attributes ``chunk_of`` (the
execution id), ``data`` (B) and ``ttl``. The reader checks the reassembled bytes against the
SHA-256 digest and length. Chunks replaced by a later result are deleted after it is stored, those
of a refused (stale) finish right away; any left behind by a crash expire with their ``ttl``.
``list`` skips chunk items.

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
from opx.durability.dynamodb_codec import ChunkRef, StoredDataError, join, split
from opx.durability.dynamodb_io import create_and_wait
from opx.durability.store import (
    DELIVERY_DONE,
    DELIVERY_PENDING,
    Claim,
    ClaimOutcome,
    ClaimPlan,
    DeliveryChannel,
    ExecutionRecord,
    Lease,
    StoreUnavailable,
    plan_claim,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_RESULTS_TABLE = "opx-executions"
DEFAULT_TTL_SECONDS = 90 * 24 * 3600
# A compressed result up to this size stays in the item (room is left for the other attributes
# under DynamoDB's 400 KB item limit); a larger one goes to chunk items of RESULT_CHUNK_BYTES.
MAX_RESULT_BYTES = 350 * 1024
RESULT_CHUNK_BYTES = 350_000
MAX_RESULT_CHUNKS = 64  # about 22 MB compressed: far beyond any real result
MAX_RESULT_JSON_BYTES = 256 * 1024 * 1024  # decompression stops here
_READ_TRIES = 3
_CLAIM_TRIES = 8
_OWNER_AND_TOKEN = "lease_owner = :owner AND fencing_token = :token"
# A channel's delivery marker, as placeholders in its writes; and the single marker of earlier
# versions, which covered every channel.
_ATTRS = ("#att", "#state", "#at")
_LEGACY = ("delivery_attempt", "delivery_state", "delivery_at")

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
        inline_limit: int = MAX_RESULT_BYTES,
        chunk_bytes: int = RESULT_CHUNK_BYTES,
        max_chunks: int = MAX_RESULT_CHUNKS,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._ttl_seconds = ttl_seconds
        self._inline_limit = inline_limit
        self._chunk_bytes = chunk_bytes
        self._max_chunks = max_chunks

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
        if len(blob) <= self._inline_limit:
            return self._end(
                execution_id,
                lease,
                result.status,
                result.reason,
                now,
                extra_set=", #result = :result, result_attempt = attempt",
                extra_remove=", result_chunks",
                extra_values={":result": {"B": blob}},
            )
        ref, parts = split(blob, self._chunk_bytes)
        if ref.parts > self._max_chunks:
            raise StoreUnavailable(
                f"execution {execution_id}: the result is {len(blob)} bytes compressed, over "
                f"the {self._max_chunks} chunks of {self._chunk_bytes} bytes that "
                f"{self.table_name} keeps for one result"
            )
        prefix = f"{execution_id}#result#{lease.token}#{ref.digest}"
        expires = str(int(now) + self._ttl_seconds)
        for i, part in enumerate(parts):
            chunk: Item = {
                "execution_id": {"S": _chunk_id(prefix, i)},
                "chunk_of": {"S": execution_id},
                "data": {"B": part},
                "ttl": {"N": expires},
            }
            self._call(
                functools.partial(self._client.put_item, TableName=self.table_name, Item=chunk)
            )
        chunks = {
            "key": {"S": prefix},
            "parts": {"N": str(ref.parts)},
            "length": {"N": str(ref.length)},
            "digest": {"S": ref.digest},
        }
        stored = self._end(
            execution_id,
            lease,
            result.status,
            result.reason,
            now,
            extra_set=", result_chunks = :chunks, result_attempt = attempt",
            extra_remove=", #result",
            extra_values={":chunks": {"M": chunks}},
        )
        if not stored:
            current = self._item(execution_id)
            if current is None or _chunk_ref(current) != (prefix, ref):
                self._drop_chunks(prefix, ref.parts)
        return stored

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
        extra_remove: str = "",
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
        update += f" REMOVE lease_owner, lease_expires_at{extra_remove}"
        if reason is None:
            update += ", reason"
        names = {"#s": "status"}
        if "#result" in update:
            names["#result"] = "result"
        answer = self._answer_unless_refused(
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key={"execution_id": {"S": execution_id}},
                UpdateExpression=update,
                ConditionExpression=_OWNER_AND_TOKEN,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_OLD",
            )
        )
        if answer is None:
            return False
        # A result in chunks that this write replaced: its chunks are no longer referenced.
        replaced = _chunk_ref(answer.get("Attributes") or {})
        new = values.get(":chunks")
        if replaced is not None and (new is None or new["M"]["key"]["S"] != replaced[0]):
            self._drop_chunks(replaced[0], replaced[1].parts)
        return True

    def claim_delivery(
        self,
        execution_id: str,
        attempt: int,
        channel: DeliveryChannel,
        now: float,
        *,
        stale_after_s: float,
        final: bool,
    ) -> bool:
        """Take the right to publish the stored result of ``attempt`` on ``channel`` (see the
        protocol): :func:`~opx.durability.store.may_claim_delivery` as a condition, for the
        channel's marker and for the legacy one."""
        markers = f"{_claimable(*_ATTRS, final=final)} AND {_claimable(*_LEGACY, final=final)}"
        return self._delivery_write(
            execution_id,
            channel,
            "SET #att = :a, #state = :pending, #at = :now",
            f"result_attempt = :a AND {markers}",
            {
                ":a": {"N": str(attempt)},
                ":pending": {"S": DELIVERY_PENDING},
                ":now": {"N": _num(now)},
                ":stale": {"N": _num(now - stale_after_s)},
            },
        )

    def finish_delivery(
        self, execution_id: str, attempt: int, channel: DeliveryChannel, now: float
    ) -> bool:
        return self._delivery_write(
            execution_id,
            channel,
            "SET #state = :done, #at = :now",
            "#att = :a",
            {":a": {"N": str(attempt)}, ":done": {"S": DELIVERY_DONE}, ":now": {"N": _num(now)}},
        )

    def release_delivery(self, execution_id: str, attempt: int, channel: DeliveryChannel) -> bool:
        return self._delivery_write(
            execution_id,
            channel,
            "REMOVE #att, #state, #at",
            "#att = :a AND #state = :pending",
            {":a": {"N": str(attempt)}, ":pending": {"S": DELIVERY_PENDING}},
        )

    def _delivery_write(
        self,
        execution_id: str,
        channel: DeliveryChannel,
        update: str,
        condition: str,
        values: Item,
    ) -> bool:
        """A conditional write of ``channel``'s marker, named #att, #state and #at."""
        return self._conditional(
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key={"execution_id": {"S": execution_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=dict(
                    zip(_ATTRS, delivery_attributes(channel), strict=True)
                ),
                ExpressionAttributeValues=values,
            )
        )

    def get(self, execution_id: str) -> ExecutionRecord | None:
        """The record, its result read back from chunk items when it has them."""
        for _ in range(_READ_TRIES):
            item = self._item(execution_id)
            if item is None or "chunk_of" in item:
                return None
            try:
                return self._record(item)
            except _ChunkMissing:
                continue  # a newer result replaced the chunks just read: read the item again
        raise StoreUnavailable(
            f"execution {execution_id}: the chunks of its result are missing from {self.table_name}"
        )

    def list(self, limit: int = 50, status: str | None = None) -> list[ExecutionRecord]:
        """Newest first. A scan: meant for operators' occasional listing, not a hot path."""
        records: list[ExecutionRecord] = []
        start: Item | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "FilterExpression": "attribute_not_exists(chunk_of)",
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self._call(functools.partial(self._client.scan, **kwargs))
            for item in page.get("Items", []):
                if status and _text(item, "status") != status:
                    continue
                if "result_chunks" not in item:
                    records.append(self._record(item))
                elif (record := self.get(item["execution_id"]["S"])) is not None:
                    records.append(record)  # read again, with its result's chunks
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        records.sort(key=lambda r: (-r.updated_at, r.execution_id))
        return records[:limit]

    def _item(self, execution_id: str) -> Item | None:
        answer = self._call(
            lambda: self._client.get_item(
                TableName=self.table_name,
                Key={"execution_id": {"S": execution_id}},
                ConsistentRead=True,
            )
        )
        item: Item | None = answer.get("Item")
        return item

    def _record(self, item: Item) -> ExecutionRecord:
        execution_id = str(item["execution_id"]["S"])
        blob = None
        if "result" in item:
            blob = bytes(item["result"]["B"])
        elif (found := _chunk_ref(item)) is not None:
            blob = self._read_chunks(execution_id, *found)
        result = None if blob is None else _result(execution_id, blob)
        result_attempt = _number(item, "result_attempt")
        return ExecutionRecord(
            execution_id=execution_id,
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

    def _read_chunks(self, execution_id: str, prefix: str, ref: ChunkRef) -> bytes:
        parts: list[bytes] = []
        for i in range(ref.parts):
            chunk = self._item(_chunk_id(prefix, i))
            if chunk is None or "data" not in chunk:
                raise _ChunkMissing
            parts.append(bytes(chunk["data"]["B"]))
        try:
            return join(ref, parts)
        except StoredDataError as exc:
            raise StoreUnavailable(f"execution {execution_id}: {exc}") from exc

    def _drop_chunks(self, prefix: str, parts: int) -> None:
        """Delete chunk items nothing references any more; a failure leaves them to their ttl."""
        for i in range(parts):
            try:
                self._call(
                    functools.partial(
                        self._client.delete_item,
                        TableName=self.table_name,
                        Key={"execution_id": {"S": _chunk_id(prefix, i)}},
                    )
                )
            except StoreUnavailable:
                return

    def _conditional(self, write: Callable[[], object]) -> bool:
        """Whether the conditional write was made (False when its condition failed)."""
        return self._answer_unless_refused(write) is not None

    def _answer_unless_refused(self, write: Callable[[], Any]) -> Any | None:
        """The write's answer, or None when its condition failed."""
        try:
            return self._call(write)
        except _ConditionFailed:
            return None

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


class _ChunkMissing(Exception):
    """A chunk of a result is gone (replaced by a newer result since the item was read)."""


def delivery_attributes(channel: DeliveryChannel) -> tuple[str, str, str]:
    """The item's attributes that hold ``channel``'s marker: attempt, state, time."""
    prefix = f"delivery_{channel.value}"
    return f"{prefix}_attempt", f"{prefix}_state", f"{prefix}_at"


def _claimable(attempt: str, state: str, at: str, *, final: bool) -> str:
    """:func:`~opx.durability.store.may_claim_delivery` as a condition on one marker: none; a
    stale PENDING one of this attempt or an earlier one; for a final result, an earlier
    attempt's."""
    earlier = f" OR {attempt} < :a" if final else ""
    return (
        f"(attribute_not_exists({attempt}){earlier} "
        f"OR ({attempt} <= :a AND {state} = :pending AND {at} < :stale))"
    )


def _num(value: float) -> str:
    return repr(float(value))


def _chunk_id(prefix: str, part: int) -> str:
    return f"{prefix}#{part:05d}"


def _chunk_ref(item: Mapping[str, Any]) -> tuple[str, ChunkRef] | None:
    """Where an item's result chunks are: (key prefix, reference), or None if it has none."""
    value = item.get("result_chunks")
    if value is None:
        return None
    fields = value["M"]
    ref = ChunkRef(
        digest=str(fields["digest"]["S"]),
        parts=int(fields["parts"]["N"]),
        length=int(fields["length"]["N"]),
    )
    return str(fields["key"]["S"]), ref


def _result(execution_id: str, blob: bytes) -> ExecutionResult:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(blob, MAX_RESULT_JSON_BYTES)
    except zlib.error as exc:
        raise StoreUnavailable(
            f"execution {execution_id}: stored result is corrupt: {exc}"
        ) from exc
    if inflater.unconsumed_tail or not inflater.eof:
        raise StoreUnavailable(f"execution {execution_id}: stored result is truncated or too large")
    return ExecutionResult.model_validate_json(text)


def _text(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


def _number(item: Item, name: str) -> float | None:
    value = item.get(name)
    return None if value is None else float(value["N"])
