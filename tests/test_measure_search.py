"""The tune search on synthetic cost functions (no timing involved)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeort.measure.search import (
    Dimension,
    Space,
    coordinate_descent,
    exhaustive,
    pointwise,
    successive_halving,
)

SPACE = Space(
    (
        Dimension("threads", (1, 2, 3, 4), 4),
        Dimension("graph_opt", ("all", "extended", "basic"), "all"),
        Dimension("mode", ("sequential", "parallel"), "sequential"),
        Dimension("spinning", (True, False), True),
    )
)


def separable(point: Mapping[str, Any], _effort: int = 0) -> float:
    """A cost whose minimum is threads=2, extended, sequential, no spinning."""
    return (
        10.0
        + abs(point["threads"] - 2) * 1.5
        + {"all": 0.4, "extended": 0.0, "basic": 2.0}[point["graph_opt"]]
        + (0.0 if point["mode"] == "sequential" else 0.7)
        + (0.3 if point["spinning"] else 0.0)
    )


class Counting:
    """A group measure that counts the points it measured."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.calls, self.groups = fn, 0, []

    def __call__(self, points: Any, effort: int) -> list[float]:
        self.calls += len(points)
        self.groups.append(len(points))
        return [self.fn(p, effort) for p in points]


def test_coordinate_descent_finds_the_separable_optimum_with_few_evaluations() -> None:
    measure = Counting(separable)
    result = coordinate_descent(SPACE, measure)
    # each dimension is compared in one group: the current point with its neighbours
    assert measure.groups[:4] == [4, 3, 2, 2]
    assert result.best == {
        "threads": 2,
        "graph_opt": "extended",
        "mode": "sequential",
        "spinning": False,
    }
    assert result.best_ms == exhaustive(SPACE, pointwise(separable)).best_ms
    assert len(result.evaluations) < SPACE.size() == 48
    assert result.default_ms == separable(SPACE.default())


def test_exhaustive_measures_every_point_in_groups() -> None:
    measure = Counting(separable)
    result = exhaustive(SPACE, measure, chunk=8)
    assert measure.calls == 48 and len(result.evaluations) == 48
    assert measure.groups == [8] * 6
    assert result.best["threads"] == 2


def test_budget_stops_the_search_on_a_fake_clock() -> None:
    now = [0.0]

    def measure(point: Mapping[str, Any], effort: int) -> float:
        now[0] += 1.0  # every measurement "takes" one second
        return separable(point)

    result = coordinate_descent(SPACE, pointwise(measure), budget_s=3.0, clock=lambda: now[0])
    assert result.stopped_by_budget
    assert len(result.evaluations) <= 5  # one dimension's group, then the budget is gone
    assert "successive-halving" not in result.strategy


def test_default_wins_when_nothing_beats_it() -> None:
    flat = lambda p, e: 5.0 if p == SPACE.default() else 6.0  # noqa: E731
    result = coordinate_descent(SPACE, pointwise(flat))
    assert result.best == SPACE.default() and result.best_ms == result.default_ms == 5.0


def test_successive_halving_keeps_the_point_that_wins_at_high_effort() -> None:
    # At effort 0 'a' looks best (noise); with more effort 'b' is truly faster.
    costs = {"a": [1.0, 3.0, 3.0], "b": [2.0, 2.0, 2.0], "c": [4.0, 4.0, 4.0], "d": [5.0, 5.0, 5.0]}
    measure = lambda p, e: costs[p["n"]][min(e, 2)]  # noqa: E731
    winner, ms = successive_halving([{"n": k} for k in costs], pointwise(measure))
    assert winner == {"n": "b"} and ms == 2.0


def test_reported_latencies_come_from_the_final_high_effort_round() -> None:
    # threads=1 looks 5 ms faster in the cheap first measurement only.
    def measure(point: Mapping[str, Any], effort: int) -> float:
        base = separable(point)
        return base - 5.0 if effort == 0 and point["threads"] == 1 else base

    result = coordinate_descent(SPACE, pointwise(measure))
    assert result.best_ms == separable(result.best)  # not the optimistic first look
    assert result.default_ms == separable(SPACE.default())
    assert result.best_ms <= result.default_ms


def test_drifting_load_is_cancelled_by_measuring_together() -> None:
    """Load that grows with every measurement call would fool one-at-a-time timing; a
    group measured together sees the same load for all its points."""
    calls = [0]

    def drifting(points: Any, effort: int) -> list[float]:
        calls[0] += 1
        load = 1.0 + 0.5 * calls[0]  # the machine gets busier over time
        return [separable(p) * load for p in points]

    result = coordinate_descent(SPACE, drifting)
    assert result.best == {
        "threads": 2,
        "graph_opt": "extended",
        "mode": "sequential",
        "spinning": False,
    }


def test_defaults_kept_when_they_win_the_final_measurement() -> None:
    # threads=2 looks best while searching; in the final, longest measurement the
    # defaults are faster: tune must not report a pick slower than the defaults.
    def measure(point: Mapping[str, Any], effort: int) -> float:
        if effort >= 2:
            return 1.0 if point == SPACE.default() else 2.0
        return separable(point)

    result = coordinate_descent(SPACE, pointwise(measure))
    assert result.best == SPACE.default() and result.best_ms == result.default_ms == 1.0
    assert result.strategy.endswith("+kept-defaults")


def test_defaults_kept_when_the_pick_wins_the_final_only_by_noise() -> None:
    # threads=2 looks best while searching and is 0.5% faster in the final round: less
    # than min_gain (1%), so the defaults stay; at 2% faster the pick is kept.
    for final_gain, kept_defaults in ((0.005, True), (0.02, False)):

        def measure(point: Mapping[str, Any], effort: int, gain: float = final_gain) -> float:
            if effort >= 2:
                return 1.0 if point == SPACE.default() else 1.0 - gain
            return separable(point)

        result = coordinate_descent(SPACE, pointwise(measure))
        assert (result.best == SPACE.default()) is kept_defaults
        assert result.strategy.endswith("+kept-defaults") is kept_defaults
