"""The client side of the worker protocol (:mod:`edgeort.runtimes.worker`): start a
worker with a given Python, send requests, wait for replies with a timeout.

A crash (the process exits), a hang (no reply within the timeout: the process is
killed), a protocol mismatch and an unreadable reply each become a
:class:`~edgeort.errors.RuntimeEnvError` naming the runtime and the last lines the worker
wrote to stderr. A job's own error comes back as the same
:class:`~edgeort.errors.EdgeortError` subclass it was in the worker.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from edgeort import errors
from edgeort.errors import RuntimeEnvError
from edgeort.runtimes.worker import PROTOCOL

__all__ = ["DEFAULT_TIMEOUT", "START_TIMEOUT", "Worker"]

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # importing a big ORT build on a busy 2-core machine
DEFAULT_TIMEOUT = 600.0  # one job


class Worker:
    """One worker process. ``command``: the argv that starts it (default: ``python -m
    edgeort.runtimes.worker`` with ``python``); ``name``: the runtime, for messages."""

    def __init__(
        self,
        python: str | Path,
        *,
        name: str,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.name = name
        self.timeout = timeout
        self._argv = list(command or [str(python), "-m", "edgeort.runtimes.worker"])
        self._ids = itertools.count(1)
        self._stderr = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - closed in close()
        self._cwd = tempfile.mkdtemp(prefix="edgeort-worker-")  # not a checkout: no shadowing
        child_env = dict(os.environ if env is None else env)
        child_env.pop("PYTHONPATH", None)
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            self._proc = subprocess.Popen(
                self._argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                cwd=self._cwd,
                env=child_env,
                text=True,
                encoding="utf-8",
            )
        except OSError as exc:
            raise RuntimeEnvError(
                f"runtime {name}: cannot start its worker {self._argv[0]}: {exc}", runtime=name
            ) from exc
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self._proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self._proc.stdout,), daemon=True)
        self._reader.start()
        try:
            reply = self._next(start_timeout, "starting")
        except RuntimeEnvError:
            self.close()
            raise
        info = reply.get("hello") if isinstance(reply, dict) else None
        if not isinstance(info, dict):
            self.close(kill=True)
            raise RuntimeEnvError(
                f"runtime {name}: the worker's first line is not a hello: {reply!r}", runtime=name
            )
        if info.get("protocol") != PROTOCOL:
            self.close(kill=True)
            raise RuntimeEnvError(
                f"runtime {name}: its worker speaks protocol {info.get('protocol')!r} (edgeort "
                f"{info.get('edgeort')}), this edgeort speaks {PROTOCOL}: re-create the "
                f"runtime (edgeort runtimes add {name} --force) or use a matching edgeort",
                runtime=name,
            )
        self.hello: dict[str, Any] = info

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def _stderr_tail(self, lines: int = 15) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail)

    def _next(self, timeout: float, doing: str, deadline: float | None = None) -> Any:
        """The next JSON reply within ``timeout`` s (or by ``deadline``, a monotonic
        time: a call's whole budget, which stray replies do not extend)."""
        deadline = time.monotonic() + timeout if deadline is None else deadline
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(left, 0.001))
            except queue.Empty:
                self.kill()
                raise RuntimeEnvError(
                    f"runtime {self.name}: the worker hung while {doing} (no reply within "
                    f"{timeout:g} s); it was killed. stderr: {self._stderr_tail() or '(empty)'}",
                    runtime=self.name,
                ) from None
            if line is None:
                code = self._proc.wait()
                how = f"signal {-code}" if code < 0 else f"exit code {code}"
                raise RuntimeEnvError(
                    f"runtime {self.name}: the worker crashed while {doing} ({how}). "
                    f"stderr: {self._stderr_tail() or '(empty)'}",
                    runtime=self.name,
                )
            try:
                return json.loads(line)
            except ValueError:
                log.warning("runtime %s: ignoring a non-JSON line: %s", self.name, line[:200])

    def call(self, request: Mapping[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Send ``request`` (a job), wait for its reply; returns the job's result."""
        if self._proc.poll() is not None or self._proc.stdin is None:
            raise RuntimeEnvError(
                f"runtime {self.name}: the worker is not running (exit code "
                f"{self._proc.returncode})",
                runtime=self.name,
            )
        rid = next(self._ids)
        job = str(request.get("job"))
        try:
            self._proc.stdin.write(json.dumps({**request, "id": rid}) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the reader sees the exit and reports the crash
        limit = timeout or self.timeout
        deadline = time.monotonic() + limit
        while True:
            reply = self._next(limit, f"running job {job!r}", deadline)
            if isinstance(reply, dict) and reply.get("id") == rid:
                break
        if reply.get("ok"):
            result = reply.get("result")
            return dict(result) if isinstance(result, dict) else {}
        raise _as_error(self.name, reply.get("error") or {})

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def close(self, *, kill: bool = False) -> None:
        """Ask the worker to stop (``kill``: do not ask); kill it when it does not stop
        within 10 s. Idempotent."""
        if kill:
            self.kill()
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(json.dumps({"id": 0, "job": "shutdown"}) + "\n")
                self._proc.stdin.flush()
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired, AssertionError):
                self.kill()
        self._reader.join(timeout=5)
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self._stderr.close()
        import shutil

        shutil.rmtree(self._cwd, ignore_errors=True)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_error(runtime: str, error: Mapping[str, Any]) -> errors.EdgeortError:
    """The worker's error as the same EdgeortError class, message prefixed by where."""
    kind = str(error.get("type", "EdgeortError"))
    message = f"in runtime {runtime}: {error.get('message', 'unknown error')}"
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, errors.EdgeortError):
        try:
            return cls(message)
        except TypeError:  # a class whose constructor needs more
            pass
    return RuntimeEnvError(f"{message} ({kind})", runtime=runtime)
