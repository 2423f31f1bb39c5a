"""Text from a model, a tool or a server, made safe to put on a person's terminal.

The live view strips what could act on the terminal (escape sequences, control characters, and the
bidirectional controls that visually reorder what the reader sees); ``flowrun logs show`` shows the
same characters escaped instead, so a replay tells what was there. One list serves both.
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls but tab and newline, DEL, C1 controls, and the bidi marks, embeddings and isolates.
UNSAFE_CHARACTERS = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"

_SEQUENCE_OR_CHARACTER = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]"  # CSI: cursor moves, colours, screen clears
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[@-Z\\-_]?"  # other escapes
    rf"|[{UNSAFE_CHARACTERS}]"
)
_CHARACTER = re.compile(f"[{UNSAFE_CHARACTERS}]")


def strip_controls(text: str) -> str:
    """Remove every sequence and character that could rewrite or reorder the screen."""
    return _SEQUENCE_OR_CHARACTER.sub("", text)


def show_controls(text: Any) -> str:
    """Make control characters visible (``\\x1b``, ``\\u202e``) instead of letting them act."""
    text = "" if text is None else str(text)

    def visible(m: re.Match[str]) -> str:
        c = m.group()
        return {"\r": "\\r", "\x00": "\\0"}.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")

    return _CHARACTER.sub(visible, text)


def duration_text(ms: float | None) -> str:
    """A duration as a person reads it: ``812 ms``, ``5.3 s``, ``1m 01s``, ``2h 05m``. The live
    summary line and ``flowrun logs`` share it, so the same run reads the same in both."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, secs = divmod(int(ms / 1000), 60)
    return f"{minutes}m {secs:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"
