"""The ``bedrock-agent-runtime`` client OPX uses: guarded to InvokeAgent/Retrieve only, with
botocore timeouts and no botocore retries (OPX's agent runner retries, with its own backoff and
one deadline over all attempts). The endpoint comes from the standard AWS variables, so
``AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME`` points it at a test endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from opx.agents.bedrock import errors
from opx.agents.bedrock.stream import StreamResult, read_stream
from opx.config import BedrockAgentRef
from opx.security.readonly import guard, reasoning_policy

CONNECT_TIMEOUT_S = 5.0


def make_client(read_timeout_s: float, *, endpoint_url: str | None = None) -> BaseClient:
    """A guarded client whose socket reads give up after ``read_timeout_s`` seconds of silence
    (an agent streams trace events as it works, so silence means it is stuck)."""
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
        retries={"total_max_attempts": 1, "mode": "standard"},
        user_agent_extra="opx",
    )
    client: BaseClient = boto3.client(
        "bedrock-agent-runtime", config=config, endpoint_url=endpoint_url
    )
    return guard(client, reasoning_policy())


def invoke_once(
    client: Any,  # a bedrock-agent-runtime client (botocore builds its methods at run time)
    ref: BedrockAgentRef,
    session_id: str,
    text: str,
    session_attributes: Mapping[str, str],
) -> StreamResult:
    """One ``InvokeAgent`` call, read to its end. Never raises for AWS errors: a refused call or
    a broken stream comes back in ``StreamResult.error`` (with the usage seen before it)."""
    try:
        response = client.invoke_agent(
            agentId=ref.agent_id,
            agentAliasId=ref.alias_id,
            sessionId=session_id,
            inputText=text,
            enableTrace=True,
            sessionState={"sessionAttributes": dict(session_attributes)},
        )
    except ClientError as exc:
        return StreamResult(error=errors.from_client_error(exc))
    except BotoCoreError as exc:
        return StreamResult(error=errors.from_botocore(exc))
    return read_stream(response["completion"])
