"""The AWS telemetry source: the tool interface over CloudWatch, CloudWatch Logs, X-Ray, Cloud
Map, CloudTrail, DynamoDB and a Bedrock Knowledge Base — read-only, bounded and fail-soft."""

from opx.tools.aws.settings import AwsSettings, load_aws_settings
from opx.tools.aws.source import AwsTelemetrySource

__all__ = ["AwsSettings", "AwsTelemetrySource", "load_aws_settings"]
