"""Mask secret values in every line we print, log or send to the model.

A secret is any value read from the environment for the API key, a header, a URL or a body. The
masker also catches the forms a secret takes on its way through libraries: percent-encoded,
JSON-escaped, base64 at any alignment (as in a Basic auth header, or ``base64("Bearer " + key)``)
and each line of a multi-line value. ``StreamMasker`` masks a secret that a stream splits
across pieces.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 4  # shorter values would shred ordinary text; validate warns about them


def base64_forms(secret: bytes) -> set[str]:
    """What base64 of any text holding ``secret`` surely contains, for each of the three places
    the secret can start at in a 3-byte group (``base64("Bearer " + token)`` starts it at the
    second byte): the characters made of the secret's bits only. Standard and URL-safe alphabets."""
    whole = base64.b64encode(secret).decode().rstrip("=")  # the secret alone, to its last character
    forms = {whole, whole.translate(_URLSAFE)}
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + secret).decode()
        first = -(-8 * offset // 6)  # the first character with no bit of the filler
        end = 8 * (offset + len(secret)) // 6  # past the last character with no bit of what follows
        core = encoded[first:end]
        forms |= {core, core.translate(_URLSAFE)}
    return forms


_URLSAFE = str.maketrans("+/", "-_")


class Masker:
    def __init__(self, secrets: Iterable[str] = ()):
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < MIN_LENGTH:
            return
        forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
        forms |= base64_forms(secret.encode("utf-8", errors="replace"))
        for line in secret.splitlines():
            if len(line.strip()) >= MIN_LENGTH:
                forms.add(line.strip())
        new = {f for f in forms if len(f) >= MIN_LENGTH} - self._forms
        if new:
            self._forms |= new
            ordered = sorted(self._forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(f) for f in ordered))

    @property
    def active(self) -> bool:
        return self._pattern is not None

    @property
    def longest(self) -> int:
        """The length of the longest form masked: a stream holds back one character less."""
        return max(map(len, self._forms), default=0)

    def mask(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def mask_value(self, value: Any) -> Any:
        """Mask every string inside a JSON-like value."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {self.mask(str(k)): self.mask_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.mask_value(v) for v in value]
        return value


class StreamMasker:
    """Mask text that arrives in pieces (the model's streamed deltas), where a secret may be split
    across two pieces or more. Each ``feed`` returns the text that is safe to pass on; the last
    ``longest - 1`` characters are held back until more text shows whether they start a secret,
    and ``flush`` returns them (masked) when the stream ends. Concatenated, what it returns never
    holds a secret, and it equals ``masker.mask`` of the whole text."""

    def __init__(self, masker: Masker):
        self.masker = masker
        self._held = ""

    def feed(self, text: str) -> str:
        pattern = self.masker._pattern
        if pattern is None:
            held, self._held = self._held, ""
            return held + text
        buf = self._held + text
        cut = max(len(buf) - (self.masker.longest - 1), 0)
        out, pos = [], 0
        for m in pattern.finditer(buf):
            if m.start() >= cut:
                break  # may be the start of a longer form: decided with the next piece
            out += [buf[pos:m.start()], MASK]
            pos = m.end()
        cut = max(cut, pos)
        out.append(buf[pos:cut])
        self._held = buf[cut:]
        return "".join(out)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return self.masker.mask(held)

    @property
    def holding(self) -> bool:
        return bool(self._held)
