"""The search behind ``edgeort tune``: coordinate descent, then successive halving.

A :class:`Space` is an ordered set of dimensions (threads, spinning, optimisation level,
execution mode, EP knobs), each with a few values. :func:`coordinate_descent` starts from
the space's default point and improves one dimension at a time, sweeping until a full
pass changes nothing or the budget is spent. The best few points are then re-measured by
:func:`successive_halving` (more runs each round, half dropped), and the winner and the
default are measured once more, side by side, for the reported speed-up.

Every comparison is made *within a group measured together*: a :data:`GroupMeasure`
gets all candidates at once and interleaves their runs, returning one median each. On
a shared machine the load drifts from second to second; interleaving makes that drift
hit every candidate alike, so the search compares settings, not moments.

The measuring function and the clock are parameters, so the search is tested on
synthetic cost functions without timing anything (:func:`pointwise` adapts one).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Dimension",
    "GroupMeasure",
    "SearchResult",
    "Space",
    "coordinate_descent",
    "exhaustive",
    "pointwise",
    "successive_halving",
]

Point = tuple[tuple[str, Any], ...]  # sorted (dimension, value) pairs
# (points, effort level) -> median ms of each point, measured together
GroupMeasure = Callable[[Sequence[Mapping[str, Any]], int], list[float]]


def pointwise(fn: Callable[[Mapping[str, Any], int], float]) -> GroupMeasure:
    """A GroupMeasure from a one-point function (no interleaving: for tests)."""
    return lambda points, effort: [fn(p, effort) for p in points]


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    values: tuple[Any, ...]
    default: Any


@dataclass(frozen=True, slots=True)
class Space:
    dimensions: tuple[Dimension, ...]

    def default(self) -> dict[str, Any]:
        return {d.name: d.default for d in self.dimensions}

    def size(self) -> int:
        n = 1
        for d in self.dimensions:
            n *= len(d.values)
        return n

    def points(self) -> Iterator[dict[str, Any]]:
        names = [d.name for d in self.dimensions]
        for combo in itertools.product(*(d.values for d in self.dimensions)):
            yield dict(zip(names, combo, strict=True))


def key(point: Mapping[str, Any]) -> Point:
    return tuple(sorted(point.items()))


@dataclass(slots=True)
class SearchResult:
    best: dict[str, Any]
    best_ms: float
    default_ms: float
    evaluations: dict[Point, float] = field(default_factory=dict)
    strategy: str = ""
    stopped_by_budget: bool = False
    elapsed_s: float = 0.0

    def ranked(self) -> list[tuple[dict[str, Any], float]]:
        return sorted(((dict(k), v) for k, v in self.evaluations.items()), key=lambda kv: kv[1])


def _unique(points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    seen: set[Point] = set()
    out = []
    for p in points:
        if key(p) not in seen:
            seen.add(key(p))
            out.append(dict(p))
    return out


def coordinate_descent(
    space: Space,
    measure: GroupMeasure,
    *,
    budget_s: float | None = None,
    max_passes: int = 3,
    finalists: int = 3,
    final_effort: int = 2,
    min_gain: float = 0.01,
    clock: Callable[[], float] = time.perf_counter,
) -> SearchResult:
    """Best point of ``space`` by coordinate descent within ``budget_s`` seconds. For each
    dimension, the current point and its neighbours along it are measured together; a
    neighbour replaces the current point only when ``min_gain`` (a fraction) faster. The
    default point always reaches the final round, and the pick must beat it there by
    ``min_gain`` too, so the pick is never a noisy loss or a noisy tie."""
    start = clock()

    def over() -> bool:
        return budget_s is not None and clock() - start >= budget_s

    default = space.default()
    current: dict[str, Any] = dict(default)
    scores: dict[Point, float] = {}
    stopped = False
    for _ in range(max_passes):
        changed = False
        for dim in space.dimensions:
            if over():
                stopped = True
                break
            group = _unique([current, *({**current, dim.name: v} for v in dim.values)])
            if len(group) < 2:
                continue
            ms = measure(group, 0)
            scores.update({key(p): m for p, m in zip(group, ms, strict=True)})
            best = min(range(len(group)), key=lambda i: ms[i])
            if best != 0 and ms[best] < ms[0] * (1.0 - min_gain):
                current, changed = group[best], True
        if not changed or stopped:
            break
    result = SearchResult(dict(current), 0.0, 0.0, scores, "coordinate-descent")
    if finalists > 1 and not stopped and not over():
        top = _unique([*(p for p, _ in result.ranked()[:finalists]), current, default])
        result.best, _ = successive_halving(top, measure)
        result.strategy += "+successive-halving"
    # The reported pair is measured together at the highest effort: like with like.
    pair = _unique([result.best, default])
    ms = measure(pair, final_effort)
    result.best_ms, result.default_ms = ms[0], ms[-1]
    if result.best_ms >= result.default_ms * (1.0 - min_gain):
        # The defaults won the last word, or lost it by less than min_gain (noise: a
        # setting 0.5% faster in tune's runs was 2.5x slower in a zoo run): keep them.
        result.best, result.best_ms = dict(default), result.default_ms
        result.strategy += "+kept-defaults"
    result.stopped_by_budget = stopped
    result.elapsed_s = clock() - start
    return result


def successive_halving(
    points: Sequence[Mapping[str, Any]], measure: GroupMeasure
) -> tuple[dict[str, Any], float]:
    """Re-measure ``points`` together at rising effort, keeping the better half each round."""
    alive = _unique(points)
    effort = 1
    while True:
        ms = measure(alive, effort)
        order = sorted(range(len(alive)), key=lambda i: ms[i])
        if len(alive) <= 1:
            return alive[0], ms[0]
        alive = [alive[i] for i in order[: max(1, len(alive) // 2)]]
        if len(alive) == 1:
            return alive[0], ms[order[0]]
        effort += 1


def exhaustive(
    space: Space, measure: GroupMeasure, *, effort: int = 0, chunk: int = 8
) -> SearchResult:
    """Every point of ``space`` measured (``chunk`` at a time, together): the reference
    ``tune`` is compared with."""
    points = list(space.points())
    scores: dict[Point, float] = {}
    for i in range(0, len(points), chunk):
        group = points[i : i + chunk]
        scores.update({key(p): m for p, m in zip(group, measure(group, effort), strict=True)})
    best_key = min(scores, key=lambda k: scores[k])
    default_ms = scores.get(key(space.default()), float("nan"))
    return SearchResult(dict(best_key), scores[best_key], default_ms, scores, "exhaustive")
