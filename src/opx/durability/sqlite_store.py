"""The execution store on an embedded SQLite file (the laptop and CI home)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opx.domain.result import ExecutionResult, ExecutionStatus, is_final
from opx.durability.store import Claim, ClaimOutcome, ExecutionRecord, StoreUnavailable

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
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_by_update ON executions (updated_at DESC);
"""
_COLUMNS = (
    "execution_id, incident_id, status, reason, attempt, lease_owner, lease_expires_at, "
    "result_json, created_at, updated_at"
)
# Attempts that ended without a usable answer start over on a fresh checkpoint thread.
_RESTART = (ExecutionStatus.FAILED.value,)


class SqliteExecutionStore:
    """One row per execution. Claims run in an IMMEDIATE transaction, so two processes sharing the
    data directory never both run the same execution."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
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
        self, execution_id: str, incident_id: str, owner: str, lease_s: float, now: float
    ) -> Claim:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                claim = self._claim_in(db, execution_id, incident_id, owner, now + lease_s, now)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return claim

    def _claim_in(
        self,
        db: sqlite3.Connection,
        execution_id: str,
        incident_id: str,
        owner: str,
        expires: float,
        now: float,
    ) -> Claim:
        record = self._get(db, execution_id)
        if record is None:
            db.execute(
                f"INSERT INTO executions ({_COLUMNS}) VALUES (?, ?, ?, NULL, 1, ?, ?, NULL, ?, ?)",
                (
                    execution_id,
                    incident_id,
                    ExecutionStatus.IN_PROGRESS.value,
                    owner,
                    expires,
                    now,
                    now,
                ),
            )
            return Claim(ClaimOutcome.CLAIMED, self._require(db, execution_id), resume=False)
        if is_final(record.status, record.reason):
            return Claim(ClaimOutcome.FINISHED, record, resume=False)
        live = record.lease_expires_at is not None and record.lease_expires_at > now
        if record.status == ExecutionStatus.IN_PROGRESS and live and record.lease_owner != owner:
            return Claim(ClaimOutcome.LEASE_HELD, record, resume=False)
        restart = record.status in _RESTART or record.status == ExecutionStatus.NO_RECOMMENDATION
        attempt = record.attempt + 1 if restart else record.attempt
        db.execute(
            "UPDATE executions SET status = ?, reason = NULL, attempt = ?, lease_owner = ?, "
            "lease_expires_at = ?, updated_at = ? WHERE execution_id = ?",
            (ExecutionStatus.IN_PROGRESS.value, attempt, owner, expires, now, execution_id),
        )
        return Claim(ClaimOutcome.CLAIMED, self._require(db, execution_id), resume=not restart)

    def finish(self, execution_id: str, owner: str, result: ExecutionResult, now: float) -> bool:
        """Store the result if this owner still holds the execution and no final result exists."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE executions SET status = ?, reason = ?, result_json = ?, lease_owner = NULL,"
                " lease_expires_at = NULL, updated_at = ? WHERE execution_id = ? AND "
                "lease_owner = ?",
                (
                    result.status.value,
                    result.reason.value if result.reason else None,
                    result.model_dump_json(),
                    now,
                    execution_id,
                    owner,
                ),
            )
            return cursor.rowcount == 1

    def release(
        self, execution_id: str, owner: str, status: str, reason: str | None, now: float
    ) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE executions SET status = ?, reason = ?, lease_owner = NULL, "
                "lease_expires_at = NULL, updated_at = ? "
                "WHERE execution_id = ? AND lease_owner = ?",
                (status, reason, now, execution_id, owner),
            )

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
    )
