"""The execution store on an embedded SQLite file (the laptop and CI home).

Table ``executions``: one row per execution. Table ``deliveries``: one row per execution and
delivery channel, the channel's marker (``attempt``, ``state``, ``at``). The ``delivery_*``
columns of ``executions`` hold the single marker that earlier versions wrote for every channel at
once: nothing writes them any more, but a claim still honours them, so upgrading never publishes
a result twice."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opx.domain.result import ExecutionResult, ExecutionStatus, Reason
from opx.durability.store import (
    DELIVERY_DONE,
    DELIVERY_PENDING,
    Claim,
    ClaimOutcome,
    ClaimPlan,
    DeliveryChannel,
    DeliveryMarker,
    ExecutionRecord,
    Lease,
    StoreUnavailable,
    may_claim_delivery,
    plan_claim,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    execution_id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    attempt INTEGER NOT NULL,
    lease_owner TEXT,
    lease_expires_at REAL,
    result_json TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    fencing_token INTEGER NOT NULL DEFAULT 0,
    result_attempt INTEGER,
    bundle TEXT,
    delivery_attempt INTEGER,
    delivery_state TEXT,
    delivery_at REAL
);
CREATE INDEX IF NOT EXISTS executions_by_update ON executions (updated_at DESC);
CREATE TABLE IF NOT EXISTS deliveries (
    execution_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (execution_id, channel)
);
"""
# Columns added after the first release; older files gain them when opened.
_ADDED_COLUMNS = {
    "fencing_token": "INTEGER NOT NULL DEFAULT 0",
    "result_attempt": "INTEGER",
    "bundle": "TEXT",
    "delivery_attempt": "INTEGER",
    "delivery_state": "TEXT",
    "delivery_at": "REAL",
}
_COLUMNS = (
    "execution_id, incident_id, status, reason, attempt, lease_owner, lease_expires_at, "
    "result_json, created_at, updated_at, fencing_token, result_attempt, bundle"
)
# The lease fence: a write counts only while the record still carries the holder and its token.
_FENCE = "execution_id = ? AND lease_owner = ? AND fencing_token = ?"


class SqliteExecutionStore:
    """One row per execution. Claims run in an IMMEDIATE transaction, so two processes sharing the
    data directory never both run the same execution."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
                _add_missing_columns(db)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the execution store {path}: {exc}") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the execution store {self.path}: {exc}") from exc
        try:
            yield db
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"execution store {self.path}: {exc}") from exc
        finally:
            db.close()

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
        """Apply the delivery rule atomically and, when it says run, take the lease."""
        with self._connect() as db, _immediate(db):
            record = self._get(db, execution_id)
            plan = plan_claim(record, owner, now, force)
            if plan.outcome is ClaimOutcome.CLAIMED:
                lease = Lease(owner, expires_at, (record.fencing_token if record else 0) + 1)
                if record is None:
                    _insert(db, execution_id, incident_id, lease, bundle, now)
                else:
                    _update(db, execution_id, plan, lease, bundle, now)
            return Claim(plan.outcome, self._require(db, execution_id), plan.resume)

    def finish(self, execution_id: str, lease: Lease, result: ExecutionResult, now: float) -> bool:
        """Store the result and free the lease, if the lease is still this holder's."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE executions SET status = ?, reason = ?, result_json = ?, "
                "result_attempt = attempt, lease_owner = NULL, lease_expires_at = NULL, "
                f"updated_at = ? WHERE {_FENCE}",
                (
                    result.status.value,
                    result.reason.value if result.reason else None,
                    result.model_dump_json(),
                    now,
                    execution_id,
                    lease.owner,
                    lease.token,
                ),
            )
            return cursor.rowcount == 1

    def release(
        self,
        execution_id: str,
        lease: Lease,
        status: ExecutionStatus,
        reason: Reason | None,
        now: float,
    ) -> bool:
        """Give the lease up with a non-final status, if it is still this holder's."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE executions SET status = ?, reason = ?, lease_owner = NULL, "
                f"lease_expires_at = NULL, updated_at = ? WHERE {_FENCE}",
                (
                    status.value,
                    reason.value if reason else None,
                    now,
                    execution_id,
                    lease.owner,
                    lease.token,
                ),
            )
            return cursor.rowcount == 1

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
        protocol): read, decide and write in one IMMEDIATE transaction."""
        with self._connect() as db, _immediate(db):
            row = db.execute(
                "SELECT result_attempt, delivery_attempt, delivery_state, delivery_at "
                "FROM executions WHERE execution_id = ?",
                (execution_id,),
            ).fetchone()
            if row is None or row[0] != attempt:
                return False
            markers = (_marker(row[1:]), _channel_marker(db, execution_id, channel))
            if not all(
                may_claim_delivery(m, attempt, now, stale_after_s, final=final) for m in markers
            ):
                return False
            db.execute(
                "INSERT INTO deliveries (execution_id, channel, attempt, state, at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (execution_id, channel) DO UPDATE SET "
                "attempt = excluded.attempt, state = excluded.state, at = excluded.at",
                (execution_id, channel.value, attempt, DELIVERY_PENDING, now),
            )
            return True

    def finish_delivery(
        self, execution_id: str, attempt: int, channel: DeliveryChannel, now: float
    ) -> bool:
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE deliveries SET state = ?, at = ? "
                "WHERE execution_id = ? AND channel = ? AND attempt = ?",
                (DELIVERY_DONE, now, execution_id, channel.value, attempt),
            )
            return cursor.rowcount == 1

    def release_delivery(self, execution_id: str, attempt: int, channel: DeliveryChannel) -> bool:
        with self._connect() as db:
            cursor = db.execute(
                "DELETE FROM deliveries "
                "WHERE execution_id = ? AND channel = ? AND attempt = ? AND state = ?",
                (execution_id, channel.value, attempt, DELIVERY_PENDING),
            )
            return cursor.rowcount == 1

    def get(self, execution_id: str) -> ExecutionRecord | None:
        with self._connect() as db:
            return self._get(db, execution_id)

    def list(self, limit: int = 50, status: str | None = None) -> list[ExecutionRecord]:
        query = f"SELECT {_COLUMNS} FROM executions"
        params: tuple[object, ...] = ()
        if status:
            query += " WHERE status = ?"
            params = (status,)
        query += " ORDER BY updated_at DESC, execution_id LIMIT ?"
        with self._connect() as db:
            rows = db.execute(query, (*params, limit)).fetchall()
        return [_record(row) for row in rows]

    def _get(self, db: sqlite3.Connection, execution_id: str) -> ExecutionRecord | None:
        row = db.execute(
            f"SELECT {_COLUMNS} FROM executions WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return None if row is None else _record(row)

    def _require(self, db: sqlite3.Connection, execution_id: str) -> ExecutionRecord:
        record = self._get(db, execution_id)
        if record is None:
            raise StoreUnavailable(f"execution {execution_id} vanished from {self.path}")
        return record


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken up front, so that what it reads cannot change before it writes."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _marker(values: tuple[object, ...]) -> DeliveryMarker | None:
    attempt, state, at = values
    if attempt is None or state is None:
        return None
    return DeliveryMarker(int(str(attempt)), str(state), float(str(at or 0.0)))


def _channel_marker(
    db: sqlite3.Connection, execution_id: str, channel: DeliveryChannel
) -> DeliveryMarker | None:
    row = db.execute(
        "SELECT attempt, state, at FROM deliveries WHERE execution_id = ? AND channel = ?",
        (execution_id, channel.value),
    ).fetchone()
    return None if row is None else _marker(row)


def _add_missing_columns(db: sqlite3.Connection) -> None:
    present = {row[1] for row in db.execute("PRAGMA table_info(executions)")}
    for name, definition in _ADDED_COLUMNS.items():
        if name not in present:
            db.execute(f"ALTER TABLE executions ADD COLUMN {name} {definition}")


def _insert(
    db: sqlite3.Connection,
    execution_id: str,
    incident_id: str,
    lease: Lease,
    bundle: str | None,
    now: float,
) -> None:
    db.execute(
        f"INSERT INTO executions ({_COLUMNS}) "
        "VALUES (?, ?, ?, NULL, 1, ?, ?, NULL, ?, ?, ?, NULL, ?)",
        (
            execution_id,
            incident_id,
            ExecutionStatus.IN_PROGRESS.value,
            lease.owner,
            lease.expires_at,
            now,
            now,
            lease.token,
            bundle,
        ),
    )


def _update(
    db: sqlite3.Connection,
    execution_id: str,
    plan: ClaimPlan,
    lease: Lease,
    bundle: str | None,
    now: float,
) -> None:
    db.execute(
        "UPDATE executions SET status = ?, reason = NULL, attempt = ?, lease_owner = ?, "
        "lease_expires_at = ?, fencing_token = ?, bundle = COALESCE(?, bundle), updated_at = ? "
        "WHERE execution_id = ?",
        (
            ExecutionStatus.IN_PROGRESS.value,
            plan.attempt,
            lease.owner,
            lease.expires_at,
            lease.token,
            bundle,
            now,
            execution_id,
        ),
    )


def _record(row: tuple[object, ...]) -> ExecutionRecord:
    (
        execution_id,
        incident_id,
        status,
        reason,
        attempt,
        owner,
        expires,
        result_json,
        created,
        updated,
        token,
        result_attempt,
        bundle,
    ) = row
    result = (
        ExecutionResult.model_validate_json(str(result_json)) if result_json is not None else None
    )
    return ExecutionRecord(
        execution_id=str(execution_id),
        incident_id=str(incident_id),
        status=str(status),
        reason=None if reason is None else str(reason),
        attempt=int(str(attempt)),
        lease_owner=None if owner is None else str(owner),
        lease_expires_at=None if expires is None else float(str(expires)),
        result=result,
        created_at=float(str(created)),
        updated_at=float(str(updated)),
        fencing_token=int(str(token)),
        result_attempt=None if result_attempt is None else int(str(result_attempt)),
        bundle=None if bundle is None else str(bundle),
    )
