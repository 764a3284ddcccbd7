"""Every error a user can cause is an :class:`EdgeortError`.

The tree (exit code of the CLI in brackets)::

    EdgeortError [1]
    ├── UsageError [2]          a bad option or argument value (CLI or library keyword)
    ├── ProfileError [3]        a device profile is invalid; lists every problem at once
    ├── ModelError [4]          an ONNX model cannot be read, checked or loaded
    ├── DataError [5]           calibration/validation/input files do not fit the model
    ├── BundleError [6]         a bundle is malformed (JSON, schema, paths, zip)
    │   └── IntegrityError [7]  a bundle's bytes differ from its manifest (size, sha256,
    │       │                   extra/missing file, link, path escape)
    │       └── SignatureError [8]  signature missing, wrong key, stripped or replayed
    ├── ProviderError [9]       an execution provider is missing, fails to register or
    │   │                       cannot create a session
    │   └── NoVariantError [10] no variant of a bundle can run on this device
    ├── InputError [11]         run() feeds do not match the model's signature
    ├── PackageError [12]       the packaging pipeline cannot produce a variant
    ├── CacheError [13]         the cache or config directory is unusable
    ├── RuntimeEnvError [14]    a target runtime (an isolated ORT environment) cannot be
    │                           created, or its worker crashed, hung or speaks another protocol
    └── FarmError [15]          the device farm cannot be reached, or a farm job failed
                                on every worker that could run it (``edgeort.farm``)

Errors carry the fields a caller needs (``path``, ``key``, ``input_name``,
``expected``, ``got``) and a message a user can act on. Library code never prints;
only :mod:`edgeort.cli` turns an error into one line and an exit code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BundleError",
    "CacheError",
    "DataError",
    "EdgeortError",
    "FarmError",
    "InputError",
    "IntegrityError",
    "ModelError",
    "NoVariantError",
    "PackageError",
    "Problem",
    "ProfileError",
    "ProviderError",
    "RuntimeEnvError",
    "SignatureError",
    "UsageError",
]


class EdgeortError(Exception):
    """Base of every error edgeort raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, str | int]:
        """The error as data (``--json`` error lines, worker and farm replies)."""
        return {"type": type(self).__name__, "message": str(self), "exit_code": self.exit_code}


class UsageError(EdgeortError):
    """A bad option or argument value."""

    exit_code = 2

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a profile: where it is and what is wrong."""

    path: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: {self.key}" if self.key else self.path
        return f"{where}: {self.message}"


class ProfileError(EdgeortError):
    """A device profile is invalid. ``problems`` lists every problem found."""

    exit_code = 3

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            message = str(self.problems[0])
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{len(self.problems)} problems in profiles:\n{lines}"
        path = self.problems[0].path if self.problems else None
        super().__init__(message, path=path)


class ModelError(EdgeortError):
    """An ONNX model cannot be read, checked or loaded."""

    exit_code = 4


class DataError(EdgeortError):
    """Calibration, validation or input data files do not fit the model."""

    exit_code = 5


class BundleError(EdgeortError):
    """A bundle is malformed: bad JSON, unknown schema, unsafe paths, bad zip."""

    exit_code = 6


class IntegrityError(BundleError):
    """A bundle's bytes differ from what its manifest records."""

    exit_code = 7


class SignatureError(IntegrityError):
    """A bundle signature is missing, made with another key, stripped or replayed."""

    exit_code = 8


class ProviderError(EdgeortError):
    """An execution provider is missing, fails to register or to create a session."""

    exit_code = 9

    def __init__(
        self, message: str, *, provider: str | None = None, path: str | Path | None = None
    ) -> None:
        super().__init__(message, path=path)
        self.provider = provider


class NoVariantError(ProviderError):
    """No variant of a bundle can run on this device; ``reasons`` says why per variant."""

    exit_code = 10

    def __init__(
        self, message: str, *, reasons: dict[str, str] | None = None, path: str | Path | None = None
    ) -> None:
        super().__init__(message, path=path)
        self.reasons = dict(reasons or {})


class InputError(EdgeortError):
    """Feeds given to ``run()`` do not match the model's signature."""

    exit_code = 11

    def __init__(
        self,
        message: str,
        *,
        input_name: str | None = None,
        expected: str | None = None,
        got: str | None = None,
    ) -> None:
        super().__init__(message)
        self.input_name = input_name
        self.expected = expected
        self.got = got


class PackageError(EdgeortError):
    """The packaging pipeline cannot produce a variant."""

    exit_code = 12

    def __init__(
        self, message: str, *, target: str | None = None, path: str | Path | None = None
    ) -> None:
        super().__init__(message, path=path)
        self.target = target


class CacheError(EdgeortError):
    """The cache or config directory cannot be used."""

    exit_code = 13


class RuntimeEnvError(EdgeortError):
    """A target runtime cannot be created or used: the install failed, or its worker
    process crashed, hung past its timeout or speaks another protocol version."""

    exit_code = 14

    def __init__(
        self,
        message: str,
        *,
        runtime: str | None = None,
        path: str | Path | None = None,
        network: bool = False,
    ) -> None:
        super().__init__(message, path=path)
        self.runtime = runtime
        self.network = network  # the package index could not be reached


class FarmError(EdgeortError):
    """The device farm (``edgeort.farm``) cannot be reached, or a job failed everywhere."""

    exit_code = 15

    def __init__(self, message: str, *, address: str | None = None, job: str | None = None) -> None:
        super().__init__(message)
        self.address = address
        self.job = job
