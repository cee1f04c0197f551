"""The execution store interface: one record per execution, with its attempt, a fenced lease and
its final result, plus the pure rule that decides what a delivery of the event does."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from opx.domain.result import ExecutionResult, ExecutionStatus, Reason, is_final

DELIVERY_PENDING = "PENDING"
DELIVERY_DONE = "DONE"


class DeliveryChannel(StrEnum):
    """Where a stored result is published. Each channel has its own delivery marker, so a retry
    after a partial failure publishes only the channels not yet published."""

    EVENTS = "events"  # the AnalysisCompleted event on EventBridge
    SNS = "sns"  # the summary on the SNS topic


class StoreUnavailable(Exception):
    """The store cannot be reached or used (an infrastructure failure, exit code 3)."""


class ClaimOutcome(StrEnum):
    CLAIMED = "CLAIMED"  # the caller holds the lease and must run (or resume) the attempt
    FINISHED = "FINISHED"  # a final result is stored; return it
    LEASE_HELD = "LEASE_HELD"  # someone else is running it right now


@dataclass(frozen=True)
class Lease:
    """The right to run an attempt until ``expires_at`` (the holder's own deadline).

    ``token`` is the fencing token: it grows on every claim of the execution, so a holder whose
    lease was taken over can no longer write (its token is stale)."""

    owner: str
    expires_at: float
    token: int


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
    fencing_token: int = 0
    # The attempt that wrote ``result`` (a later attempt may be running while an earlier result
    # is still shown).
    result_attempt: int | None = None
    # Where the telemetry came from when it was a bundle directory, so a re-run can find it.
    bundle: str | None = None

    def holds_live_lease(self, now: float) -> bool:
        return (
            self.status == ExecutionStatus.IN_PROGRESS
            and self.lease_owner is not None
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    record: ExecutionRecord
    resume: bool  # True when the attempt was started before and may have checkpoints

    @property
    def lease(self) -> Lease:
        """The lease this claim granted; only a CLAIMED outcome has one."""
        record = self.record
        if self.outcome is not ClaimOutcome.CLAIMED or record.lease_owner is None:
            raise ValueError(f"a {self.outcome} claim holds no lease")
        return Lease(record.lease_owner, record.lease_expires_at or 0.0, record.fencing_token)


@dataclass(frozen=True)
class ClaimPlan:
    """What a delivery does: the outcome, and for a claim the attempt to run and whether it
    resumes from that attempt's checkpoints."""

    outcome: ClaimOutcome
    attempt: int
    resume: bool


def plan_claim(
    record: ExecutionRecord | None, owner: str, now: float, force: bool = False
) -> ClaimPlan:
    """The delivery rule, by the stored record (pure; every store implementation applies it).

    none → attempt 1; a live lease of another worker → LEASE_HELD; a final result → FINISHED
    (unless ``force``); an expired lease or INCOMPLETE → resume the same attempt; anything else
    (FAILED, all core agents failed) or ``force`` → the next attempt."""
    if record is None:
        return ClaimPlan(ClaimOutcome.CLAIMED, 1, resume=False)
    if record.holds_live_lease(now) and record.lease_owner != owner:
        return ClaimPlan(ClaimOutcome.LEASE_HELD, record.attempt, resume=False)
    if force:
        return ClaimPlan(ClaimOutcome.CLAIMED, record.attempt + 1, resume=False)
    if _final(record):
        return ClaimPlan(ClaimOutcome.FINISHED, record.attempt, resume=False)
    if record.status in (ExecutionStatus.IN_PROGRESS, ExecutionStatus.INCOMPLETE):
        return ClaimPlan(ClaimOutcome.CLAIMED, record.attempt, resume=True)
    return ClaimPlan(ClaimOutcome.CLAIMED, record.attempt + 1, resume=False)


def _final(record: ExecutionRecord) -> bool:
    # The stored result knows more than status and reason (agents held back by a kill switch):
    # it can only make a final-looking record non-final, never the reverse.
    if not is_final(record.status, record.reason):
        return False
    result = record.result
    return result is None or record.result_attempt not in (None, record.attempt) or result.final


@dataclass(frozen=True)
class DeliveryMarker:
    """One channel's delivery of the result of ``attempt``: being published (PENDING, since
    ``at``) or published (DONE, at ``at``)."""

    attempt: int
    state: str
    at: float


def may_claim_delivery(
    marker: DeliveryMarker | None,
    attempt: int,
    now: float,
    stale_after_s: float,
    *,
    final: bool,
) -> bool:
    """Whether a channel's marker lets a worker publish the result of ``attempt``, ``final``
    saying whether that result is final (:func:`~opx.domain.result.is_final`). Pure; both
    stores apply it.

    - no marker: yes;
    - a PENDING marker older than ``stale_after_s``, of this attempt or an earlier one: yes (its
      worker died while publishing, so the message may never have gone out);
    - otherwise this attempt's marker (published, or being published): no;
    - an earlier attempt's: only for a final result. A redelivery re-runs an execution that
      ended FAILED or with every core agent failed; its failure notice is published once, and
      a later real answer supersedes it once, but a re-run that fails again publishes nothing;
    - a later attempt's: no (an older result never follows a newer one)."""
    if marker is None:
        return True
    if marker.attempt > attempt:
        return False
    if marker.state == DELIVERY_PENDING and marker.at < now - stale_after_s:
        return True
    return marker.attempt < attempt and final


class ExecutionStore(Protocol):
    """Executions by id. ``claim`` must read, decide (with :func:`plan_claim`) and write
    atomically: inside a transaction, or as a conditional write that fails when the record's
    fencing token changed since it was read (or, for a new record, when one appeared).
    ``finish`` and ``release`` write only while the record still carries the lease's owner and
    token, and say whether they did."""

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
    ) -> Claim: ...

    def finish(
        self, execution_id: str, lease: Lease, result: ExecutionResult, now: float
    ) -> bool: ...

    def release(
        self,
        execution_id: str,
        lease: Lease,
        status: ExecutionStatus,
        reason: Reason | None,
        now: float,
    ) -> bool: ...

    # Delivery of a stored result, at most once per channel, except that a final result
    # supersedes an earlier attempt's non-final one: ``claim_delivery`` takes the right to
    # publish the result of ``attempt`` on ``channel`` (True) when that attempt's result is the
    # stored one and :func:`may_claim_delivery` allows it (``final``: whether that result is
    # final), atomically; ``finish_delivery`` records it published; ``release_delivery`` gives
    # the right back after a failed publish, so that a redelivery of the event publishes it. A
    # marker left by an earlier version (one for every channel) still counts for every channel.
    def claim_delivery(
        self,
        execution_id: str,
        attempt: int,
        channel: DeliveryChannel,
        now: float,
        *,
        stale_after_s: float,
        final: bool,
    ) -> bool: ...

    def finish_delivery(
        self, execution_id: str, attempt: int, channel: DeliveryChannel, now: float
    ) -> bool: ...

    def release_delivery(
        self, execution_id: str, attempt: int, channel: DeliveryChannel
    ) -> bool: ...

    def get(self, execution_id: str) -> ExecutionRecord | None: ...

    def list(self, limit: int = 50, status: str | None = None) -> list[ExecutionRecord]: ...
