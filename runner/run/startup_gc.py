"""The garbage collector waits while a run starts.

Starting a run imports the model SDK and builds the workflow, the provider and the dispatcher:
hundreds of thousands of objects that all live as long as the process. The collector, counting
those allocations, runs a few hundred collections meanwhile that free nothing: a large share of a
short run's CPU before its first request leaves (bench/run.py, figures 1d-i). So the collector is
paused from the start of the run until the first model turn has ended (or the run ends first).
Then what was built so far is frozen (``gc.freeze``: moved to the permanent generation, which no
collection walks) and the collector works as before on everything newer: a long run or a
``--chat`` session collects its garbage as usual. Without the freeze, the first collection after
the pause would walk all of it at once.
"""

from __future__ import annotations

import gc

# The events after which start-up is over: the first turn's end, or the run's.
_RESUME_ON = frozenset({"turn.completed", "run.completed", "run.failed"})


class PausedCollector:
    """Pauses the collector when made (if it was on); a sink (``__call__``) that freezes what
    exists and turns the collector back on at the first event in ``_RESUME_ON``; ``resume``
    does so at once (the caller's ``finally``)."""

    def __init__(self) -> None:
        self.paused = gc.isenabled()
        if self.paused:
            gc.disable()

    def __call__(self, event) -> None:
        if self.paused and event.type in _RESUME_ON:
            self.resume()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            gc.freeze()
            gc.enable()
