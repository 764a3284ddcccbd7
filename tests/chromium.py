"""Drive a real headless Chromium over the DevTools protocol (``--remote-debugging-pipe``).

A small stdlib client: Chromium reads commands from fd 3 and writes replies and events to
fd 4, one JSON message per NUL-terminated record. :func:`render_page` opens one local
HTML file in a fresh profile and returns every request the page made, every console
message and uncaught exception, the page's text and a full-page PNG screenshot.

Used by ``tests/test_report_browser.py`` and to make ``docs/report.png``
(``python -m tests.chromium report.html docs/report.png``).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Page:
    requests: list[str] = field(default_factory=list)
    console: list[dict[str, Any]] = field(default_factory=list)  # type, text
    exceptions: list[str] = field(default_factory=list)
    text: str = ""
    png: bytes = b""
    height: int = 0

    @property
    def errors(self) -> list[str]:
        out = [f"console.{c['type']}: {c['text']}" for c in self.console if c["type"] == "error"]
        return out + [f"exception: {x}" for x in self.exceptions]


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int, deadline: float) -> None:
        self.w, self.r, self.deadline = write_fd, read_fd, deadline
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self) -> dict[str, Any]:
        while b"\0" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise ConnectionError("Chromium closed the DevTools pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return dict(json.loads(raw))

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read_message()
            if event.get("method") == method:
                return event
            self.events.append(event)


def _spawn(chromium: str, profile_dir: str) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start Chromium with the command pipe on its fd 3 and the reply pipe on its fd 4."""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    # Above 9, so that moving them onto 3 and 4 cannot clobber one another.
    a, b = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
    os.close(to_child_r)
    os.close(from_child_w)
    # A Python trampoline moves the two pipe ends onto fds 3 and 4, then execs Chromium.
    trampoline = (
        "import os, sys; a, b = int(sys.argv[1]), int(sys.argv[2]); os.dup2(a, 3); "
        "os.dup2(b, 4); os.close(a); os.close(b); os.execvp(sys.argv[3], sys.argv[3:])"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            trampoline,
            str(a),
            str(b),
            chromium,
            *FLAGS,
            f"--user-data-dir={profile_dir}",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(a, b),
    )
    os.close(a)
    os.close(b)
    return proc, to_child_w, from_child_r


def render_page(html_file: Path, *, width: int = 1280, timeout: float = 60.0) -> Page:
    """Open ``html_file`` in headless Chromium; what it requested, logged and showed."""
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no chromium on PATH")
    url = Path(html_file).resolve().as_uri()
    page = Page()
    with tempfile.TemporaryDirectory(prefix="edgeort-chromium-") as profile_dir:
        proc, w, r = _spawn(chromium, profile_dir)
        pipe = _Pipe(w, r, time.monotonic() + timeout)
        try:
            target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
            sid = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.call(f"{domain}.enable", sid)
            pipe.call(
                "Emulation.setDeviceMetricsOverride",
                sid,
                width=width,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            pipe.call("Page.navigate", sid, url=url)
            pipe.wait_for("Page.loadEventFired")
            metrics = pipe.call("Page.getLayoutMetrics", sid)
            page.height = int(metrics["cssContentSize"]["height"])
            page.text = str(
                pipe.call(
                    "Runtime.evaluate",
                    sid,
                    expression="document.body.innerText",
                    returnByValue=True,
                )["result"]["value"]
            )
            shot = pipe.call(
                "Page.captureScreenshot",
                sid,
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": width, "height": page.height, "scale": 1},
            )
            page.png = base64.b64decode(shot["data"])
            try:
                pipe.call("Browser.close")
            except (ConnectionError, RuntimeError):
                pass
        finally:
            for fd in (w, r):
                os.close(fd)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for event in pipe.events:
        params = event.get("params", {})
        method = event.get("method")
        if method == "Network.requestWillBeSent":
            page.requests.append(str(params["request"]["url"]))
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            page.console.append({"type": params.get("type", "?"), "text": text})
        elif method == "Log.entryAdded":
            entry = params["entry"]
            kind = "error" if entry.get("level") == "error" else str(entry.get("level"))
            page.console.append({"type": kind, "text": str(entry.get("text"))})
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            thrown = details.get("exception", {}).get("description", "")
            page.exceptions.append(f"{details.get('text', '')} {thrown}".strip())
    return page


if __name__ == "__main__":  # python -m tests.chromium PAGE.html OUT.png
    result = render_page(Path(sys.argv[1]))
    Path(sys.argv[2]).write_bytes(result.png)
    print(json.dumps({"requests": result.requests, "errors": result.errors, "h": result.height}))
