"""Loggers for the device path that import :mod:`logging` only when a record could be
emitted.

``get_logger(name)`` stands in for ``logging.getLogger(name)``. While nothing in the
process has imported :mod:`logging`, nothing can have configured it either, so the root
logger's default level (``WARNING``) decides: a debug or info record is dropped without
importing :mod:`logging` (about 3 ms of a cold ``edgeort.load()``), exactly as the real
logger would drop it. Once :mod:`logging` is imported (by the application, pytest, or a
warning), every call goes to the real ``logging.getLogger(name)``, with the caller's
file and line in the record.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import logging

__all__ = ["DEBUG", "INFO", "WARNING", "Logger", "get_logger"]

DEBUG, INFO, WARNING = 10, 20, 30  # logging's level numbers


class Logger:
    """The subset of :class:`logging.Logger` the device path uses."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: logging.Logger | None = None

    @property
    def logger(self) -> logging.Logger:
        """The real logger (importing :mod:`logging` on first use)."""
        if self._logger is None:
            import logging

            self._logger = logging.getLogger(self.name)
        return self._logger

    def isEnabledFor(self, level: int) -> bool:
        if self._logger is None and "logging" not in sys.modules:
            return level >= WARNING  # unconfigured: the root logger's default level
        return self.logger.isEnabledFor(level)

    def _emit(self, level: int, msg: object, args: tuple[Any, ...], kwargs: Any) -> None:
        if self.isEnabledFor(level):
            stacklevel = int(kwargs.pop("stacklevel", 1)) + 2  # the caller, not this module
            self.logger.log(level, msg, *args, stacklevel=stacklevel, **kwargs)

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        self._emit(level, msg, args, kwargs)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._emit(DEBUG, msg, args, kwargs)

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._emit(INFO, msg, args, kwargs)

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._emit(WARNING, msg, args, kwargs)


def get_logger(name: str) -> Logger:
    return Logger(name)
