"""Chooses the reasoning backend each agent runs on, as the settings say."""

from __future__ import annotations

from datetime import timedelta

from opx.agents.analysts import local_analysts
from opx.agents.backend import LocalBackend, ReasoningBackend
from opx.config import ConfigError, Settings


def make_backend(settings: Settings) -> ReasoningBackend:
    """The backend for this run: the local analysts, or Bedrock agents where configured."""
    lookback = timedelta(hours=settings.baseline_lookback_hours)
    local = LocalBackend(local_analysts(lookback))
    bedrock = sorted(a for a in local_analysts(lookback) if settings.backend_for(a) == "bedrock")
    if bedrock:
        raise ConfigError(f"the Bedrock backend is not available yet (asked for {bedrock})")
    return local
