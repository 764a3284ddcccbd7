"""``edgeort report BUNDLE``: one self-contained HTML page about a bundle and its figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from edgeort.errors import UsageError

__all__ = ["COMMANDS"]


@click.command("report")
@click.argument(
    "bundle", metavar="BUNDLE", type=click.Path(exists=True, path_type=Path)
)  # fmt: skip
@click.option(
    "--bench",
    "bench",
    multiple=True,
    metavar="FILE.json",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Results to chart: 'edgeort bench --json' output, runtime or farm rows (repeatable).",
)
@click.option(
    "--profile",
    "traces",
    multiple=True,
    metavar="TRACE.json",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An ORT profile trace (from 'edgeort profile') or its --json output (repeatable).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML page here.",
)
@click.option(
    "--no-placement", is_flag=True, help="Skip the per-target placement (no sessions, faster)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report's data as JSON.")
def report_command(
    bundle: Path,
    bench: tuple[Path, ...],
    traces: tuple[Path, ...],
    output: Path | None,
    no_placement: bool,
    as_json: bool,
) -> None:
    """Write one self-contained HTML page about BUNDLE: its variants and gate decisions,
    accuracy against latency per device, where time goes, placement per target and the
    machines behind the figures."""
    from edgeort._fs import atomic_write_text
    from edgeort.report import build_report, render_html

    if output is None and not as_json:
        raise UsageError("give -o report.html, --json, or both", option="--output")
    data = build_report(bundle, bench=bench, traces=traces, placement=not no_placement)
    if output is not None:
        try:
            atomic_write_text(output, render_html(data))
        except OSError as exc:
            raise UsageError(f"-o {output}: cannot write: {exc}", option="--output") from exc
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    if output is not None:
        click.echo(f"Wrote {output}", err=as_json)


COMMANDS: list[click.Command] = [report_command]
