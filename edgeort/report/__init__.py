"""``edgeort report``: one self-contained HTML page (or JSON) about a bundle and its
measurements.

:func:`build_report` gathers the data (:mod:`edgeort.report.data`); :func:`render_html`
turns that same dict into the page (:mod:`edgeort.report.render`), so the JSON and the
page cannot disagree. Charts need matplotlib (``pip install 'edgeort[report]'``); the
device runtime never imports this package.
"""

from __future__ import annotations

from typing import Any

from edgeort.report.data import SCHEMA, build_report

__all__ = ["SCHEMA", "build_report", "render_html"]


def render_html(data: Any) -> str:
    """The HTML page for ``data`` (imports matplotlib)."""
    from edgeort.report.render import render_html as render

    return render(data)
