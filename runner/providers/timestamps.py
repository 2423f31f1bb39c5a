"""Timestamps as servers send them: unix seconds per the API, ISO 8601 text from some
self-hosted servers (LLAMPHouse). Anything else is treated as absent, never as an error."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def epoch_seconds(value: Any) -> float | None:
    """Unix seconds from a number or an ISO 8601 string (naive means UTC); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return None
