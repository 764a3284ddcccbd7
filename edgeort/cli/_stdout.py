"""Keep native prints off the CLI's stdout.

ORT's plugin libraries print to fd 1 (QNN writes a ``# LIBNATIVE`` line), which would mix
with ``--json`` output. While edgeort works, fd 1 points at stderr; what the CLI means to
print goes to the stream this yields, which is the real stdout.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from typing import IO

__all__ = ["guarded_stdout"]


@contextlib.contextmanager
def guarded_stdout() -> Iterator[IO[str]]:
    """A text stream onto the real stdout, with fd 1 pointed at stderr meanwhile."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        fd = -1
    if fd != 1:  # not the process's stdout (e.g. click's CliRunner): nothing to guard
        yield sys.stdout
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    out = os.fdopen(saved, "w", encoding="utf-8", buffering=1)
    try:
        yield out
    finally:
        out.flush()
        sys.stdout.flush()
        os.dup2(out.fileno(), 1)
        out.close()
