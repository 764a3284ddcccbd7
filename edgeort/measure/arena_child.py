"""One arena measurement in a fresh process (``python -m edgeort.measure.arena_child``).

RSS after freeing depends on the allocator's history: in a long-lived process glibc
raises its mmap threshold after large frees, so later runs keep memory that a fresh
process would return. :func:`edgeort.measure.checks_runtime.check_arena` therefore
measures each sequence in a new interpreter, as a deployment would see it.

Reads one JSON object on stdin: ``{"model", "ep", "provider_options", "dims_list",
"shrink"}``; prints ``{"kept_mb", "grew_mb"}`` on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnxruntime as ort
import psutil

from edgeort.measure.bench import feeds_for
from edgeort.measure.targets import Knobs, Target, create_session

_MB = 1024.0 * 1024.0


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def measure(
    target: Target, dims_list: Sequence[Mapping[str, int]], shrink: bool
) -> dict[str, float]:
    """MB kept after the big shapes, and MB of peak growth, for one session."""
    session = create_session(target, Knobs(cpu_arena=True))
    ro = ort.RunOptions()
    if shrink:
        ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    small = feeds_for(session, dims=dims_list[0])
    session.run(None, small, ro)
    base = peak = _rss()
    for dims in dims_list[1:]:
        session.run(None, feeds_for(session, dims=dims), ro)
        peak = max(peak, _rss())
    session.run(None, small, ro)
    return {"kept_mb": (_rss() - base) / _MB, "grew_mb": (peak - base) / _MB}


def main() -> int:
    job = json.loads(sys.stdin.read())
    target = Target("arena", Path(job["model"]), job["ep"], dict(job["provider_options"]))
    print(json.dumps(measure(target, job["dims_list"], bool(job["shrink"]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
