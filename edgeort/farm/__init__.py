"""The device farm: package and measure across many devices, on Dask distributed.

Needs the ``farm`` extra (``pip install 'edgeort[farm]'``: ``dask``, ``distributed``).
Devices that only run bundles never need it: ``edgeort.load`` and the rest of the
device side never import this package or Dask.

- :mod:`edgeort.farm.worker` — ``edgeort farm join``: a worker that advertises the
  device's profiles, EPs and runtimes as Dask resources and runs only
  :mod:`edgeort.farm.jobs`.
- :mod:`edgeort.farm.scheduler` — ``edgeort farm scheduler``.
- :mod:`edgeort.farm.client` — ``farm ls``, ``bench --farm``, ``package --farm``.
- :mod:`edgeort.farm.merge` — bundles written from farm results, through the writer.

Guide: docs/farm.md.
"""

from __future__ import annotations

__all__ = ["require_dask"]


def require_dask() -> None:
    """Raise a :class:`~edgeort.errors.UsageError` naming the extra when Dask is missing."""
    import importlib.util

    from edgeort.errors import UsageError

    missing = [m for m in ("dask", "distributed") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"the device farm needs {' and '.join(missing)}: pip install 'edgeort[farm]'",
            option="--farm",
        )
