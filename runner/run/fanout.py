"""Fan one event stream out to several sinks, masking secrets once on the way.

Masking happens here, before any renderer or the run log sees an event, so no sink can forget it.
A sink that raises is reported once and dropped: a broken renderer must not end the run.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Callable, Sequence

from runner.events import Event
from runner.secrets.masker import Masker

Sink = Callable[[Event], None]


def mask_event(event: Event, masker: Masker | None) -> Event:
    if masker is None or not masker.active:
        return event
    changes = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, str):
            masked = masker.mask(value)
            if masked != value:
                changes[f.name] = masked
        elif isinstance(value, (dict, list)):  # a structured answer: every string inside it
            masked = masker.mask_value(value)
            if masked != value:
                changes[f.name] = masked
    return dataclasses.replace(event, **changes) if changes else event


class FanOut:
    def __init__(self, sinks: Sequence[Sink], masker: Masker | None = None):
        self.sinks = list(sinks)
        self.masker = masker

    def __call__(self, event: Event) -> None:
        event = mask_event(event, self.masker)
        for sink in list(self.sinks):
            try:
                sink(event)
            except Exception as exc:  # noqa: BLE001 - reported, then the sink is dropped
                self.sinks.remove(sink)
                text = f"flowrun: warning: output stopped ({type(exc).__name__}: {exc})\n"
                if self.masker:
                    text = self.masker.mask(text)
                try:
                    sys.stderr.write(text)
                except Exception:  # noqa: BLE001
                    pass
