"""The execution store interface: one record per execution, with a lease and its final result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from opx.domain.result import ExecutionResult


class StoreUnavailable(Exception):
    """The store cannot be reached or used (an infrastructure failure, exit code 3)."""


class ClaimOutcome(StrEnum):
    CLAIMED = "CLAIMED"  # the caller holds the lease and must run (or resume) the attempt
    FINISHED = "FINISHED"  # a final result is stored; return it
    LEASE_HELD = "LEASE_HELD"  # someone else is running it right now


@dataclass(frozen=True)
class ExecutionRecord:
    execution_id: str
    incident_id: str
    status: str
    reason: str | None
    attempt: int
    lease_owner: str | None
    lease_expires_at: float | None
    result: ExecutionResult | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    record: ExecutionRecord
    resume: bool  # True when the attempt was started before and may have checkpoints


class ExecutionStore(Protocol):
    def claim(
        self, execution_id: str, incident_id: str, owner: str, lease_s: float, now: float
    ) -> Claim: ...

    def finish(
        self, execution_id: str, owner: str, result: ExecutionResult, now: float
    ) -> bool: ...

    def release(
        self, execution_id: str, owner: str, status: str, reason: str | None, now: float
    ) -> None: ...

    def get(self, execution_id: str) -> ExecutionRecord | None: ...

    def list(self, limit: int = 50, status: str | None = None) -> list[ExecutionRecord]: ...
