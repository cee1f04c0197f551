"""The two DynamoDB tables the runtime uses (opx.durability): checkpoints and executions. Key
schemas match the runtime's create_table/create_results_table; both expire items through the
``ttl`` attribute (epoch seconds) the runtime writes, keep 35 days of point-in-time recovery and
are encrypted with the OPX key."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from opx.durability.dynamodb_io import PK, SK

TTL_ATTRIBUTE = "ttl"
EXECUTION_KEY = "execution_id"


def _table(
    scope: Construct,
    construct_id: str,
    name: str,
    key: kms.IKey,
    production: bool,
    sort_key: str | None,
    partition_key: str,
) -> dynamodb.Table:
    return dynamodb.Table(
        scope,
        construct_id,
        table_name=name,
        partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
        sort_key=(
            dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING)
            if sort_key
            else None
        ),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute=TTL_ATTRIBUTE,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        deletion_protection=production,
        removal_policy=RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY,
    )


def checkpoint_table(
    scope: Construct, name: str, key: kms.IKey, production: bool
) -> dynamodb.Table:
    """Partition key ``session_id`` (the thread), sort key ``checkpoint_id``."""
    return _table(scope, "CheckpointTable", name, key, production, SK, PK)


def results_table(scope: Construct, name: str, key: kms.IKey, production: bool) -> dynamodb.Table:
    """Partition key ``execution_id``; lease (``lease_owner``, ``lease_expires_at``,
    ``fencing_token``) and ``status`` are plain attributes: DynamoDB declares only keys."""
    return _table(scope, "ResultsTable", name, key, production, None, EXECUTION_KEY)
