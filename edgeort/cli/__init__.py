"""The ``edgeort`` command line: the only place that imports click.

Each command group lives in its own module; this one maps :class:`EdgeortError` to one
line on stderr and the error class's exit code. Unexpected exceptions keep their
traceback.

``-v``/``--verbose`` and ``-q``/``--quiet`` work before or after the subcommand
(:func:`main` moves them in front). While a command runs, file descriptor 1 points at
stderr and only what the CLI prints reaches the real stdout, so ``--json`` output stays
pure even when native libraries (the QNN plugin's ``# LIBNATIVE`` line) print.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from edgeort import __version__
from edgeort.cli._stdout import guarded_stdout
from edgeort.errors import EdgeortError

__all__ = ["QUIET_KEY", "is_quiet", "main"]

QUIET_KEY = "edgeort.quiet"
_VERBOSITY = {"-v": "-v", "--verbose": "-v", "-q": "-q", "--quiet": "-q"}


def is_quiet() -> bool:
    """``-q`` was given: commands print no progress lines."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().meta.get(QUIET_KEY))


def hoist_verbosity(argv: list[str]) -> list[str]:
    """``-v``/``-vv``/``--verbose``/``-q``/``--quiet`` anywhere before ``--`` moved in
    front of the subcommand, so they work on either side of it."""
    flags: list[str] = []
    rest: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            rest += argv[index:]
            break
        if arg in _VERBOSITY:
            flags.append(_VERBOSITY[arg])
        elif len(arg) > 2 and arg[0] == "-" and arg[1] in "vq" and set(arg[1:]) == {arg[1]}:
            flags += [f"-{arg[1]}"] * (len(arg) - 1)  # -vv, -qq
        else:
            rest.append(arg)
    return flags + rest


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
@click.option("-v", "--verbose", count=True,
              help="More log output (-v info, -vv debug); before or after the "
                   "command.")  # fmt: skip
@click.option("-q", "--quiet", count=True,
              help="Less output: no progress lines, only errors logged; before or after the "
                   "command.")  # fmt: skip
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int) -> None:
    """edgeort: probe a device, package an ONNX model for it, run it well there.

    Shell completion: eval "$(_EDGEORT_COMPLETE=bash_source edgeort)" (zsh_source,
    fish_source for other shells; docs/cli.md).
    """
    if verbose and quiet:
        raise click.UsageError("-v/--verbose and -q/--quiet: give one of them", ctx=ctx)
    ctx.meta[QUIET_KEY] = bool(quiet)
    level = logging.ERROR if quiet else logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="edgeort: %(levelname)s: %(message)s")
    logging.getLogger().setLevel(level)  # also when logging was configured before
    if not verbose:  # ORT's quantization/fusion tools warn through the root logger
        for handler in logging.getLogger().handlers:
            handler.addFilter(_quiet_third_party)


def _quiet_third_party(record: logging.LogRecord) -> bool:
    """Hide warnings logged from onnxruntime's Python tools (advice such as "consider
    pre-processing", which edgeort already does); errors and ``-v`` show everything."""
    return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname


def _register() -> None:
    from edgeort.cli import (
        commands_cache,
        commands_farm,
        commands_measure,
        commands_package,
        commands_probe,
        commands_profiles,
        commands_report,
        commands_run,
        commands_runtimes,
        commands_sign,
    )

    modules = (
        commands_probe,
        commands_profiles,
        commands_package,
        commands_run,
        commands_measure,
        commands_report,
        commands_sign,
        commands_cache,
        commands_runtimes,
        commands_farm,
    )
    for module in modules:
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> int:
    args = hoist_verbosity(list(sys.argv[1:] if argv is None else argv))
    if "_EDGEORT_COMPLETE" in os.environ:  # shell completion: click's own protocol
        cli.main(args=args, prog_name="edgeort")
        return 0
    with guarded_stdout() as out:  # native prints go to stderr, the CLI's to stdout
        saved, sys.stdout = sys.stdout, out
        try:
            return _main(args)
        finally:
            sys.stdout = saved


def _main(args: list[str]) -> int:
    try:
        # Without standalone mode click *returns* ctx.exit()'s code instead of raising.
        rc = cli.main(args=args, prog_name="edgeort", standalone_mode=False)
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
