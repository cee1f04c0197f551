"""Deterministic identities: the same incident and evidence always give the same execution."""

from __future__ import annotations

import hashlib

_PREFIX = "opx/v1|"


def execution_id(incident_id: str, evidence_id: str, idempotency_key: str | None = None) -> str:
    """The execution id: 32 hex characters derived from the incident and its evidence (or key)."""
    material = f"{_PREFIX}{incident_id}|{idempotency_key or evidence_id}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def short_digest(*parts: str, length: int = 16) -> str:
    """A short stable digest of some text parts, for derived ids."""
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:length]
