"""The ``edgeort`` command line: the only place that imports click.

Each command group lives in its own module; this one maps :class:`EdgeortError` to one
line on stderr and the error class's exit code. Unexpected exceptions keep their
traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from edgeort import __version__
from edgeort.errors import EdgeortError

__all__ = ["main"]


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeortError as exc:
            click.echo(f"edgeort: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:  # bad arguments: one line too, with where to look
            where = (
                f"edgeort {exc.ctx.command_path.partition(' ')[2]}".rstrip()
                if exc.ctx
                else "edgeort"
            )
            click.echo(f"edgeort: error: {exc.format_message()} (see '{where} --help')", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeort")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """edgeort: probe a device, package an ONNX model for it, run it well there."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="edgeort: %(levelname)s: %(message)s")
    if not verbose:  # ORT's quantization/fusion tools warn through the root logger
        for handler in logging.getLogger().handlers:
            handler.addFilter(_quiet_third_party)


def _quiet_third_party(record: logging.LogRecord) -> bool:
    """Hide warnings logged from onnxruntime's Python tools (advice such as "consider
    pre-processing", which edgeort already does); errors and ``-v`` show everything."""
    return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname


def _register() -> None:
    from edgeort.cli import (
        commands_farm,
        commands_measure,
        commands_package,
        commands_probe,
        commands_profiles,
        commands_run,
    )

    modules = (
        commands_probe,
        commands_profiles,
        commands_package,
        commands_run,
        commands_measure,
        commands_farm,
    )
    for module in modules:
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> int:
    try:
        # Without standalone mode click *returns* ctx.exit()'s code instead of raising.
        rc = cli.main(args=argv, prog_name="edgeort", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
