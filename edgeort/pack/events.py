"""Progress events of the packaging pipeline.

``package(..., on_event=callback)`` calls ``callback(Event)`` at every step of every
target. The CLI renders them as status lines or, with ``--json``, one JSON line each.
An exception raised by the callback aborts the run (nothing is written).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["EVENT_KINDS", "STEPS", "Event", "EventSink"]

EVENT_KINDS = ("start", "progress", "done", "warning")
# The steps of one target, in order (fractions are spread evenly over them).
STEPS = ("load", "prepare", "optimize", "quantize", "convert", "verify", "measure", "write")


@dataclass(frozen=True, slots=True)
class Event:
    """One progress event. ``target`` is "" for steps shared by every target (load,
    write); ``fraction`` is the fraction of the whole run done so far (0..1)."""

    kind: str  # start | progress | done | warning
    target: str
    step: str
    message: str
    fraction: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"event": asdict(self)}


class EventSink:
    """Turns pipeline progress into :class:`Event` objects with an overall fraction."""

    def __init__(self, on_event: Callable[[Event], None] | None, n_targets: int) -> None:
        self._on_event = on_event
        self._n = max(1, n_targets)
        self._target_index = -1
        self._last = 0.0

    def begin_target(self, index: int) -> None:
        self._target_index = index

    def fraction(self, step: str) -> float:
        """Overall fraction at the start of ``step`` (load first, write last)."""
        if step == "load":
            return 0.0
        if step == "write":
            return 0.98
        per_target = 0.95 / self._n
        inner = STEPS.index(step) / len(STEPS) if step in STEPS else 0.5
        return round(0.02 + per_target * (max(self._target_index, 0) + inner), 4)

    def emit(self, kind: str, target: str, step: str, message: str, *, done: bool = False) -> None:
        if self._on_event is None:
            return
        fraction = 1.0 if done else max(self._last, self.fraction(step))
        self._last = fraction  # steps repeat (one build per recipe): never go back
        self._on_event(Event(kind, target, step, message, fraction))
