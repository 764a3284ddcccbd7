"""``edgeort farm scheduler``: a Dask scheduler with edgeort's defaults.

Defaults: listen on 127.0.0.1 port 8786 (pass ``--host 0.0.0.0`` to take workers from
other machines, with TLS), no dashboard unless ``--dashboard ADDRESS`` (it needs
``bokeh``). ``dask scheduler`` works as well: edgeort needs nothing special from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

from distributed import Scheduler

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "run_scheduler"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8786


def run_scheduler(
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    dashboard: str | None = None,
    security: Any = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run a scheduler until SIGINT/SIGTERM; ``on_ready(address)`` once it listens."""
    protocol = "tls" if security is not None and security.require_encryption else "tcp"

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        # Without --dashboard, Dask's small HTTP server (health, metrics) still starts: on
        # a free port of the loopback, never on 8787 of every interface.
        kwargs: dict[str, Any] = {
            "dashboard": dashboard is not None,
            "dashboard_address": dashboard if dashboard is not None else "127.0.0.1:0",
        }
        async with Scheduler(
            host=host, port=port, protocol=protocol, security=security, **kwargs
        ) as scheduler:
            if on_ready is not None:
                on_ready(scheduler.address)
            finished = asyncio.ensure_future(scheduler.finished())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({finished, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
