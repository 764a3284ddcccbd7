"""``edgeort farm join``: make this device a Dask worker of the farm.

The worker probes the device once, advertises what it can do as Dask resources
(:mod:`edgeort.farm.resources`) and its probe summary as a worker metric (``edgeort farm
ls`` reads it from the scheduler), runs one job at a time by default (``nthreads=1``;
timing jobs also take the ``timing`` resource), and runs only edgeort's job functions:
a task whose function is not one of :data:`edgeort.farm.jobs.JOBS` fails without running,
and the worker has no ``run``/``run_coroutine``/``plugin-add`` handlers (the client-side
``Client.run`` and worker plugins). The scheduler's own messages are Dask's.

When the scheduler goes away (restart, network loss) Dask closes the worker; ``join``
then starts a new one that waits for the scheduler to come back, until it is stopped
(SIGINT/SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Mapping
from typing import Any

from distributed import Worker
from distributed.worker_state_machine import ExecuteFailureEvent

from edgeort.errors import FarmError
from edgeort.farm import jobs

__all__ = ["FarmWorker", "join", "refusal"]

log = logging.getLogger(__name__)

CLOSED_HANDLERS = ("run", "run_coroutine", "plugin-add")
METRIC = "edgeort"


def refusal(run_spec: Any) -> str | None:
    """Why a task must not run here (None: it is one of edgeort's job functions)."""
    func = getattr(run_spec, "func", None)
    name = getattr(func, "__name__", None)
    module = getattr(func, "__module__", None)
    if module == jobs.__name__ and name in jobs.JOBS and getattr(jobs, name) is func:
        return None
    what = f"{module}.{name}" if name else type(run_spec).__name__
    return (
        f"this edgeort farm worker runs only edgeort.farm.jobs.{{{', '.join(jobs.JOBS)}}}; "
        f"refused {what}"
    )


class RefusedJob(Exception):
    """Raised inside a refused task (a plain exception: it pickles by value)."""


class FarmWorker(Worker):
    """A Dask worker that runs only :data:`edgeort.farm.jobs.JOBS`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in CLOSED_HANDLERS:
            self.handlers.pop(name, None)

    async def execute(self, key: Any, *, stimulus_id: str) -> Any:
        ts = self.state.tasks.get(key)
        why = refusal(ts.run_spec) if ts is not None and ts.run_spec is not None else None
        if ts is None or why is None:
            return await super().execute(key, stimulus_id=stimulus_id)
        log.warning("%s", why)
        return ExecuteFailureEvent.from_exception(
            RefusedJob(why), key=key, run_id=ts.run_id, stimulus_id=stimulus_id
        )


def _worker_kwargs(
    info: Mapping[str, Any], resources: Mapping[str, float], **kwargs: Any
) -> dict[str, Any]:
    summary = dict(info)
    metrics: dict[str, Callable[[Worker], Any]] = {METRIC: lambda _w: summary}
    return {"resources": dict(resources), "metrics": metrics, **kwargs}


async def _serve(
    address: str,
    kwargs: Mapping[str, Any],
    stop: asyncio.Event,
    *,
    retry_s: float,
    on_state: Callable[[str], None] | None,
) -> None:
    from distributed.metrics import time as dask_time  # noqa: F401 - distributed is importable

    say = on_state or (lambda _msg: None)
    while not stop.is_set():
        worker = FarmWorker(address, **kwargs)
        try:
            await worker
            say(f"joined {address} as {worker.address} ({worker.name})")
            waiter = asyncio.ensure_future(worker.finished())  # type: ignore[no-untyped-call]
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if stop.is_set():
                await worker.close(reason="edgeort farm join stopped")
                waiter.cancel()
                break
            say(f"lost the scheduler at {address}; reconnecting")
        except (OSError, TimeoutError) as exc:
            say(f"cannot reach {address} ({exc}); retrying in {retry_s:g} s")
            with contextlib.suppress(Exception):
                await worker.close(reason="connection failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=retry_s)


def join(
    address: str,
    *,
    name: str | None = None,
    nthreads: int = 1,
    security: Any = None,
    retry_s: float = 2.0,
    info: Mapping[str, Any] | None = None,
    on_state: Callable[[str], None] | None = None,
    death_timeout: float | None = None,
) -> None:
    """Serve as a farm worker of the scheduler at ``address`` until SIGINT/SIGTERM.

    ``info``: the probe summary (default: probe now). The worker waits for an absent
    scheduler and reconnects after it restarts.
    """
    from edgeort.farm.resources import advertise, summary

    if nthreads < 1:
        raise FarmError(f"--nthreads {nthreads}: expected at least 1", address=address)
    info = dict(info) if info is not None else summary()
    kwargs = _worker_kwargs(
        info,
        advertise(info),
        name=name or None,
        nthreads=nthreads,
        security=security,
        dashboard=False,
        death_timeout=death_timeout,
        memory_limit=0,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)  # not on Windows: Ctrl+C still stops
        await _serve(address, kwargs, stop, retry_s=retry_s, on_state=on_state)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
