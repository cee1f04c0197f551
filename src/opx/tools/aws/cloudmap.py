"""Cloud Map services as graph nodes: ``ListServices`` enumerates the registry and ``GetService``
reads each service (bounded), so services that X-Ray has not seen recently still appear."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from opx.tools.aws.calls import Gatherer
from opx.tools.records import JsonDict

NODE_TYPE = "AWS::ServiceDiscovery::Service"


@dataclass(frozen=True)
class RegisteredService:
    service_id: str
    name: str
    namespace_id: str


def registered_services(
    client: Any, gatherer: Gatherer, *, max_pages: int, max_services: int
) -> list[RegisteredService]:
    """Registered services in (name, id) order, at most ``max_services`` of them."""
    summaries: list[JsonDict] = []
    token: str | None = None
    for _ in range(max_pages):
        params: JsonDict = {"MaxResults": 100}
        if token:
            params["NextToken"] = token
        page = gatherer.call(partial(client.list_services, **params), "ListServices")
        if page is None:
            break
        summaries += [s for s in page.get("Services", []) if s.get("Id") and s.get("Name")]
        token = page.get("NextToken")
        if not token:
            break
    else:
        gatherer.dropped = True
    summaries.sort(key=lambda s: (str(s["Name"]), str(s["Id"])))
    if len(summaries) > max_services:
        gatherer.dropped = True
    found = []
    for summary in summaries[:max_services]:
        detail = gatherer.call(
            partial(client.get_service, Id=summary["Id"]), f"GetService {summary['Id']}"
        )
        service = (detail or {}).get("Service") or {}
        if service.get("Name"):
            found.append(
                RegisteredService(
                    str(service.get("Id", summary["Id"])),
                    str(service["Name"]),
                    str(service.get("NamespaceId", "")),
                )
            )
    return found
