"""Did-you-mean: the one rule every message uses to name the option a person probably meant."""

from __future__ import annotations

import difflib
from typing import Iterable


def suggest(word: str, options: Iterable[str]) -> str | None:
    """The option closest to a misspelt word, if one is close enough (case is ignored)."""
    lowered = {o.lower(): o for o in options}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None
