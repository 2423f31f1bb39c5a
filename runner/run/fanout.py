"""Fan one event stream out to several sinks, masking secrets once on the way.

Masking happens here, before any renderer or the run log sees an event, so no sink can forget it.
A sink that raises is reported once and dropped, and the run ends non-zero: a broken renderer
must neither crash the run nor let it end "successfully" with no answer shown. The sinks left
(the run log, ``-o jsonl``) then see the run end as ``output_failed``, the way the user does.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Callable, Sequence

from runner.errors import RunError
from runner.events import Event, Notice, RunCompleted, RunFailed, TextDelta
from runner.secrets.masker import Masker, StreamMasker

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
    """``emit`` for a run: masks each event once, then hands it to every sink.

    The model's text deltas go through a ``StreamMasker``: a secret split across deltas is masked
    too, so no sink (stdout, ``-o jsonl``, ``--record``, the run log) ever holds one, not even
    when its deltas are concatenated. The held-back tail is passed on before the next event that
    is not text (a turn's end, a tool call, the run's end).

    A sink that raises is dropped and the failure kept in ``failures``: the caller ends the run
    with a non-zero exit and says so (a run whose answer could not be shown did not succeed)."""

    def __init__(self, sinks: Sequence[Sink], masker: Masker | None = None):
        self.sinks = list(sinks)
        self.masker = masker
        self.failures: list[str] = []  # what went wrong, one line per dropped sink
        self.dropped: list[Sink] = []
        self._stream = StreamMasker(masker) if masker is not None else None

    def __call__(self, event: Event) -> None:
        stream = self._stream
        if stream is not None and isinstance(event, TextDelta):
            text = stream.feed(event.text)
            if text:
                self._deliver(dataclasses.replace(event, text=text))
            return
        if stream is not None and stream.holding and not isinstance(event, Notice):
            self._deliver(TextDelta(stream.flush()))
        if isinstance(event, RunCompleted) and self.failures:
            event = output_failed(event, self.failures[0])
        self._deliver(mask_event(event, self.masker))

    def check_output(self, end: Event) -> None:
        """Raise (exit 1, already said) when ``end`` completed but a sink failed on the way."""
        if self.failures and getattr(end, "exit_code", 1) == 0:
            raise RunError(output_failure(self.failures[0]), shown=False)

    def _deliver(self, event: Event) -> None:
        for sink in list(self.sinks):
            try:
                sink(event)
            except Exception as exc:  # noqa: BLE001 - reported, then the sink is dropped
                self.sinks.remove(sink)
                self.dropped.append(sink)
                what = f"{type(exc).__name__}: {_first_line(exc)}"
                if self.masker:
                    what = self.masker.mask(what)
                self.failures.append(what)
                try:
                    sys.stderr.write(f"flowrun: error: output stopped ({what})\n")
                except Exception:  # noqa: BLE001
                    pass


def output_failure(failure: str) -> str:
    return f"the output failed ({failure}), so the run did not succeed"


def output_failed(end: RunCompleted, failure: str) -> RunFailed:
    """The end of a run that completed but could not show everything it said."""
    return RunFailed(end.run_id, "output_failed", output_failure(failure), 1, end.final_text, end.turns,
                     end.tool_calls, end.usage, end.duration_ms)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no message"
