"""``-o jsonl``: one normalized event per line on stdout, for programs."""

from __future__ import annotations

import json
from typing import TextIO

from runner.events import Event


class JsonlRenderer:
    def __init__(self, out: TextIO):
        self.out = out

    def __call__(self, event: Event) -> None:
        self.out.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        self.out.flush()
