"""Reading a synthesised template: find resources, and resolve the intrinsic functions in ARNs
to plain strings for a made-up account, so policies can be evaluated."""

from __future__ import annotations

from typing import Any

REGION, ACCOUNT = "eu-west-1", "123456789012"
_PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


def of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in resources.items() if v["Type"] == kind}


def one(resources: dict[str, Any], kind: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
    found = [(k, v) for k, v in of_type(resources, kind).items() if k.startswith(prefix)]
    assert len(found) == 1, f"expected one {kind} {prefix!r}, found {[k for k, _ in found]}"
    return found[0]


def arn_of(resources: dict[str, Any], logical_id: str, attribute: str = "Arn") -> str:
    """A resource's ARN: the real form for named tables, else a stand-in unique to it."""
    resource = resources.get(logical_id, {})
    if resource.get("Type") == "AWS::DynamoDB::Table" and attribute == "Arn":
        name = resource["Properties"]["TableName"]
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    return f"arn:aws:cfn:{REGION}:{ACCOUNT}:{logical_id}/{attribute}"


def resolve(value: Any, resources: dict[str, Any]) -> Any:
    """``value`` with Ref, Fn::GetAtt and Fn::Join replaced by strings."""
    if isinstance(value, list):
        return [resolve(v, resources) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        ref = value["Ref"]
        return _PSEUDO.get(ref) or arn_of(resources, ref, "Ref")
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return arn_of(resources, logical_id, attribute)
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(str(resolve(p, resources)) for p in parts)
    return {k: resolve(v, resources) for k, v in value.items()}
