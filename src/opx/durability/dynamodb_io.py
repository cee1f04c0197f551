"""DynamoDB requests of the checkpoint saver: the client with short timeouts and bounded adaptive
retries, strongly consistent paged queries, and batched writes and reads whose unprocessed items
are retried with backoff and never dropped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]
PK = "session_id"
SK = "checkpoint_id"
_BATCH_WRITE = 25
_BATCH_GET = 100


class UnprocessedItemsError(RuntimeError):
    """DynamoDB kept returning unprocessed batch items after every retry."""


def client_config(extra: Config | None = None) -> Config:
    """Short timeouts, so a stuck call fails fast, and adaptive retries with a bound."""
    base = Config(
        connect_timeout=2,
        read_timeout=10,
        retries={"mode": "adaptive", "max_attempts": 6},
        max_pool_connections=32,
    )
    return base.merge(extra) if extra is not None else base


def make_client(
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    config: Config | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
) -> DynamoDBClient:
    """A DynamoDB client with :func:`client_config` (merged with ``config``)."""
    import boto3  # noqa: PLC0415 (boto3 is only needed where DynamoDB is used)

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=region_name,
        config=client_config(config),
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
    )


def create_and_wait(
    client: DynamoDBClient,
    table_name: str,
    keys: Sequence[tuple[str, Literal["HASH", "RANGE"]]],
    *,
    timeout_s: float = 120.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Create an on-demand table with the given (attribute, HASH|RANGE) string keys, unless it
    exists, and wait until it is ACTIVE (local servers keep a new table CREATING a moment)."""
    from botocore.exceptions import ClientError  # noqa: PLC0415 (boto3 only where DynamoDB is)

    try:
        client.create_table(
            TableName=table_name,
            KeySchema=[{"AttributeName": name, "KeyType": kind} for name, kind in keys],
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name, _ in keys
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    delay, waited = 0.02, 0.0
    while client.describe_table(TableName=table_name)["Table"].get("TableStatus") != "ACTIVE":
        if waited >= timeout_s:
            raise TimeoutError(f"table {table_name} is not ACTIVE after {timeout_s} s")
        sleep(delay)
        waited += delay
        delay = min(delay * 2, 1.0)


def key(partition: str, sort: str) -> Item:
    return {PK: {"S": partition}, SK: {"S": sort}}


def string(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value["S"] if isinstance(value, Mapping) and isinstance(value.get("S"), str) else None


def binary(item: Mapping[str, Any], name: str) -> bytes | None:
    value = item.get(name)
    data = value.get("B") if isinstance(value, Mapping) else None
    return bytes(data) if isinstance(data, bytes | bytearray) else None


def number(item: Mapping[str, Any], name: str) -> int | None:
    value = item.get(name)
    text = value.get("N") if isinstance(value, Mapping) else None
    return int(float(text)) if isinstance(text, str) else None


class TableIO:
    """One table's requests. Every read is strongly consistent."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_batch_attempts: int = 10,
    ) -> None:
        self.client = client
        self.table = table
        self._sleep = sleep
        self._attempts = max_batch_attempts

    def _backoff(self, attempt: int) -> None:
        # Deterministic exponential backoff; botocore's adaptive mode already paces throttles.
        self._sleep(min(2.0, 0.05 * 2**attempt))

    def query(
        self,
        partition: str,
        *,
        prefix: str | None = None,
        between: tuple[str, str] | None = None,
        reverse: bool = False,
        projection: Sequence[str] = (),
        limits: Sequence[int | None] = (None,),
    ) -> Iterator[Item]:
        """Items of one partition in key order (or reversed), following every page.
        ``limits`` gives the page sizes in turn; the last one repeats."""
        names = {"#pk": PK}
        values: Item = {":pk": {"S": partition}}
        condition = "#pk = :pk"
        if prefix is not None:
            condition += " AND begins_with(#sk, :prefix)"
            names["#sk"] = SK
            values[":prefix"] = {"S": prefix}
        elif between is not None:
            condition += " AND #sk BETWEEN :lo AND :hi"
            names["#sk"] = SK
            values[":lo"], values[":hi"] = {"S": between[0]}, {"S": between[1]}
        params: Item = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not reverse,
            "ConsistentRead": True,
        }
        if projection:
            names.update({f"#p{i}": name for i, name in enumerate(projection)})
            params["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(projection)))
        params["ExpressionAttributeNames"] = names
        page = 0
        while True:
            limit = limits[min(page, len(limits) - 1)]
            if limit is not None:
                params["Limit"] = limit
            else:
                params.pop("Limit", None)
            response = self.client.query(**params)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            params["ExclusiveStartKey"] = last
            page += 1

    def scan_keys(self) -> Iterator[Item]:
        """Every key of the table (only for listing without a thread)."""
        params: Item = {
            "TableName": self.table,
            "ProjectionExpression": "#pk, #sk",
            "ExpressionAttributeNames": {"#pk": PK, "#sk": SK},
            "ConsistentRead": True,
        }
        while True:
            response = self.client.scan(**params)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            params["ExclusiveStartKey"] = last

    def put(self, item: Item) -> None:
        self.client.put_item(TableName=self.table, Item=item)

    def update(self, item_key: Item, expression: str, names: dict[str, str], values: Item) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=item_key,
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def write_batch(self, puts: Sequence[Item] = (), deletes: Sequence[Item] = ()) -> None:
        """Put and delete items 25 per request; unprocessed ones are sent again until done."""
        requests: list[Item] = [{"PutRequest": {"Item": item}} for item in puts]
        requests += [{"DeleteRequest": {"Key": k}} for k in deletes]
        for start in range(0, len(requests), _BATCH_WRITE):
            self._write_until_done(requests[start : start + _BATCH_WRITE])

    def _write_until_done(self, batch: list[Item]) -> None:
        pending: dict[str, Any] = {self.table: batch}
        for attempt in range(self._attempts):
            response = self.client.batch_write_item(RequestItems=pending)
            left = response.get("UnprocessedItems") or {}
            if not left.get(self.table):
                return
            pending = {self.table: list(left[self.table])}
            self._backoff(attempt)
        raise UnprocessedItemsError(f"{len(pending[self.table])} batch writes left unprocessed")

    def get_batch(self, keys: Sequence[Item], projection: Sequence[str] = ()) -> list[Item]:
        """Items for the given keys (missing ones are absent), 100 per request."""
        found: list[Item] = []
        unique = list({(k[PK]["S"], k[SK]["S"]): k for k in keys}.values())
        for start in range(0, len(unique), _BATCH_GET):
            found += self._get_until_done(unique[start : start + _BATCH_GET], projection)
        return found

    def _get_until_done(self, keys: list[Item], projection: Sequence[str]) -> list[Item]:
        request: Item = {"Keys": keys, "ConsistentRead": True}
        if projection:
            names = {f"#p{i}": name for i, name in enumerate((PK, SK, *projection))}
            request["ProjectionExpression"] = ", ".join(names)
            request["ExpressionAttributeNames"] = names
        pending: dict[str, Any] = {self.table: request}
        found: list[Item] = []
        for attempt in range(self._attempts):
            response = self.client.batch_get_item(RequestItems=pending)
            found += response.get("Responses", {}).get(self.table, [])
            left = response.get("UnprocessedKeys") or {}
            if not left.get(self.table):
                return found
            pending = {self.table: {**request, "Keys": list(left[self.table]["Keys"])}}
            self._backoff(attempt)
        raise UnprocessedItemsError(f"{len(pending[self.table]['Keys'])} batch reads unprocessed")
