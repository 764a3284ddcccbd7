"""A real local farm for tests: a Dask scheduler on 127.0.0.1 and ``edgeort farm join``
workers, each a separate process started through the edgeort CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import REPO

START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def edgeort_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeort", *args]


def run_cli(
    args: Sequence[str], env: dict[str, str], *, timeout: float = 240.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        edgeort_cmd(*args), env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@dataclass
class Farm:
    address: str
    env: dict[str, str]
    logs: Path
    scheduler: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_scheduler(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        self.scheduler = self._spawn("scheduler", "farm", "scheduler", "--port", port)

    def start_worker(self, name: str) -> None:
        self.workers[name] = self._spawn(name, "farm", "join", self.address, "--name", name)

    def _spawn(self, label: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{label}-{time.time_ns()}.log", "wb") as log:  # the child's copy
            return subprocess.Popen(
                edgeort_cmd(*args), env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )

    def ls(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        args = ["farm", "ls", self.address, "--json", "--timeout", str(timeout)]
        proc = run_cli(args, self.env, timeout=60 + timeout, check=False)
        if proc.returncode != 0:
            return []
        return list(json.loads(proc.stdout)["workers"])

    def wait_for(self, names: set[str], timeout: float = START_TIMEOUT_S) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = self.ls()
            if {w["name"] for w in workers} >= names and all(w["edgeort"] for w in workers):
                return workers
            time.sleep(1.0)
        raise AssertionError(f"farm workers {sorted(names)} did not join; logs in {self.logs}")

    def ensure(self, names: set[str]) -> None:
        """Start any of ``names`` that is not running (a test killed it), then wait."""
        missing = [n for n in sorted(names) if n not in self.workers]
        for name in missing:
            self.start_worker(name)
        if missing:
            self.wait_for(names)

    def kill_worker(self, name: str) -> None:
        proc = self.workers.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        procs = [*self.workers.values(), *([self.scheduler] if self.scheduler else [])]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def farm_env(base: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        EDGEORT_CACHE_DIR=str(base / "cache"),
        EDGEORT_CONFIG_DIR=str(base / "config"),
        XDG_CACHE_HOME=str(base / "xdg-cache"),
        XDG_CONFIG_HOME=str(base / "xdg-config"),
        DASK_TEMPORARY_DIRECTORY=str(base / "dask"),
        PYTHONPATH=str(REPO),
    )
    env.pop("EDGEORT_TRUSTED_KEYS", None)
    return env
