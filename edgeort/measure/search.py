"""The search behind ``edgeort tune``: coordinate descent, then successive halving.

A :class:`Space` is an ordered set of dimensions (threads, spinning, optimisation level,
execution mode, EP knobs), each with a few values. :func:`coordinate_descent` starts from
the space's default point and improves one dimension at a time (every value of that
dimension, the others held), sweeping until a full pass changes nothing or the budget is
spent. Each evaluation is a *median* latency, so single outliers do not steer it. The
best few points are then re-measured with :func:`successive_halving` (more runs each
round, half of the points dropped) to pick the winner on fresher, larger samples.

The measuring function and the clock are parameters, so the search is tested on
synthetic cost functions without timing anything.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Dimension",
    "SearchResult",
    "Space",
    "coordinate_descent",
    "exhaustive",
    "successive_halving",
]

Point = tuple[tuple[str, Any], ...]  # sorted (dimension, value) pairs
Measure = Callable[[Mapping[str, Any], int], float]  # (point, effort level) -> median ms


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


class _Evaluator:
    def __init__(self, measure: Measure, budget_s: float | None, clock: Callable[[], float]):
        self.measure, self.budget_s, self.clock = measure, budget_s, clock
        self.start = clock()
        self.cache: dict[Point, float] = {}
        self.out_of_budget = False

    def spent(self) -> float:
        return self.clock() - self.start

    def over(self) -> bool:
        if self.budget_s is not None and self.spent() >= self.budget_s:
            self.out_of_budget = True
        return self.out_of_budget

    def __call__(self, point: Mapping[str, Any]) -> float:
        k = key(point)
        if k not in self.cache:
            self.cache[k] = self.measure(point, 0)
        return self.cache[k]


def coordinate_descent(
    space: Space,
    measure: Measure,
    *,
    budget_s: float | None = None,
    max_passes: int = 3,
    finalists: int = 3,
    final_effort: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> SearchResult:
    """Best point of ``space`` by coordinate descent within ``budget_s`` seconds; the
    default point always reaches the final round, so the pick is never a noisy loss."""
    ev = _Evaluator(measure, budget_s, clock)
    current = space.default()
    default_ms = best_ms = ev(current)
    for _ in range(max_passes):
        changed = False
        for dim in space.dimensions:
            for value in dim.values:
                if ev.over():
                    break
                trial = {**current, dim.name: value}
                ms = ev(trial)
                if ms < best_ms:
                    current, best_ms, changed = trial, ms, True
        if not changed or ev.over():
            break
    result = SearchResult(dict(current), best_ms, default_ms, dict(ev.cache), "coordinate-descent")
    default = space.default()
    if finalists > 1 and not ev.over():
        top = [p for p, _ in result.ranked()[:finalists]]
        if key(default) not in {key(p) for p in top}:
            top.append(default)
        result.best, _ = successive_halving(top, measure, clock=clock)
        result.strategy += "+successive-halving"
    # The reported pair is measured back to back at the same (highest) effort, so the
    # speed-up over the defaults compares like with like.
    result.best_ms = measure(result.best, final_effort)
    same = key(result.best) == key(default)
    result.default_ms = result.best_ms if same else measure(default, final_effort)
    result.stopped_by_budget = ev.out_of_budget
    result.elapsed_s = ev.spent()
    return result


def successive_halving(
    points: Sequence[Mapping[str, Any]],
    measure: Measure,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[dict[str, Any], float]:
    """Re-measure ``points`` at rising effort, keeping the better half each round."""
    alive = [dict(p) for p in points]
    effort, scores = 1, {key(p): float("inf") for p in alive}
    while True:
        for p in alive:
            scores[key(p)] = measure(p, effort)
        alive.sort(key=lambda p: scores[key(p)])
        if len(alive) <= 1:
            return alive[0], scores[key(alive[0])]
        alive = alive[: max(1, len(alive) // 2)]
        effort += 1


def exhaustive(space: Space, measure: Measure, *, effort: int = 0) -> SearchResult:
    """Every point of ``space`` measured once: the reference ``tune`` is compared with."""
    scores = {key(p): measure(p, effort) for p in space.points()}
    best_key = min(scores, key=lambda k: scores[k])
    default_ms = scores.get(key(space.default()), float("nan"))
    return SearchResult(dict(best_key), scores[best_key], default_ms, scores, "exhaustive")
