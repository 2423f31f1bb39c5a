"""Protocol shapes that real self-hosted servers send, switched on one by one.

Faults (faults.py) are failures any server may have; quirks are a server's own reading of the
protocol, seen on LLAMPHouse (Assistants) and llama.cpp's ``llama-server`` (Responses). Each
stays off unless named in ``ScriptedServer(quirks=...)``, so every other test keeps the
reference wire format.

    text_as_string        Assistants: a text block's ``text`` is a plain string, not {value, annotations}
    calls_in_steps_only   Assistants: the calls come in ``thread.run.step.created`` only; no
                          ``thread.run.requires_action`` event, and the run is ``requires_action``
                          with ``required_action: null``
    submit_answers_json   Assistants: ``submit_tool_outputs`` with ``stream: true`` answers a Run as
                          JSON (the run goes on on the server)
    stuck_after_submit    Assistants: ``submit_tool_outputs`` fails with HTTP 500 half-way and leaves
                          the run ``in_progress`` for ever (its ``expires_at`` unchanged)
    no_expiry             Assistants: runs carry ``expires_at: null``
    iso_timestamps        Assistants: ``*_at`` fields as ISO 8601 text instead of unix seconds
    typed_input_items     Responses: an input item with a role other than user and no ``type`` is
                          refused with HTTP 400 "Cannot determine type of 'item'"
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

QUIRKS = ("text_as_string", "calls_in_steps_only", "submit_answers_json", "stuck_after_submit", "no_expiry",
          "iso_timestamps", "typed_input_items")


def check_quirks(names: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(names)
    unknown = sorted(chosen - set(QUIRKS))
    if unknown:
        raise ValueError(f"unknown quirk {', '.join(unknown)}; use any of {', '.join(QUIRKS)}")
    return chosen


def iso_timestamps(obj: Any) -> Any:
    """A copy of ``obj`` with every integer ``*_at`` field as ISO 8601 text (UTC)."""
    if isinstance(obj, dict):
        return {k: _iso(v) if k.endswith("_at") and isinstance(v, int) and not isinstance(v, bool)
                else iso_timestamps(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [iso_timestamps(v) for v in obj]
    return obj


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None).isoformat()


def untyped_items(body: dict) -> list[int]:
    """Indexes of input items a server that dispatches on ``type`` cannot place."""
    items = body.get("input")
    if not isinstance(items, list):
        return []
    return [i for i, item in enumerate(items)
            if isinstance(item, dict) and "type" not in item and item.get("role") not in (None, "user")]
