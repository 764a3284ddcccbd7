"""``edgeort farm scheduler | join | ls``, and the ``--farm`` parts of ``bench`` and
``package`` (docs/farm.md). Dask is imported only when a farm command runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = [
    "COMMANDS",
    "farm_options",
    "format_farm_bench",
    "job_printer",
    "need_farm",
    "security_from",
    "tls_options",
]

F = TypeVar("F", bound=Callable[..., Any])


def tls_options(func: F) -> F:
    """``--tls-ca-file``, ``--tls-cert``, ``--tls-key`` (all three, or none)."""
    for name, help_text in reversed(
        (
            ("--tls-ca-file", "CA certificate (PEM) that signed every farm member's certificate."),
            ("--tls-cert", "This member's certificate (PEM)."),
            ("--tls-key", "This member's private key (PEM)."),
        )
    ):
        func = click.option(
            name, type=click.Path(dir_okay=False, path_type=Path), default=None, help=help_text
        )(func)
    return func


def farm_options(func: F) -> F:
    """``--farm ADDRESS``, ``--farm-timeout`` and the TLS options."""
    func = tls_options(func)
    func = click.option(
        "--farm-timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Give up on farm jobs not finished after S seconds (default: wait).",
    )(func)
    return click.option(
        "--farm",
        "farm",
        metavar="ADDRESS",
        default=None,
        help="Run on the device farm whose scheduler is at ADDRESS (HOST:PORT); docs/farm.md.",
    )(func)


def need_farm(farm_timeout: float | None, tls: dict[str, Any]) -> None:
    """The farm-only options given without ``--farm`` are an error, not ignored."""
    from edgeort.errors import UsageError

    given = [f"--{k.replace('_', '-')}" for k, v in tls.items() if v is not None]
    if farm_timeout is not None:
        given.insert(0, "--farm-timeout")
    if given:
        raise UsageError(f"{', '.join(given)}: only with --farm ADDRESS", option=given[0])


def quiet_dask() -> None:
    """Client commands: Dask's INFO lines only with ``-v``."""
    import logging

    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        logging.getLogger("distributed").setLevel(logging.WARNING)


def security_from(kwargs: dict[str, Any]) -> Any:
    """Check that the ``farm`` extra is installed, then pop the TLS options from
    ``kwargs``: a ``distributed.Security`` or None."""
    from edgeort.farm import require_dask

    require_dask()
    quiet_dask()
    ca, cert, key = (kwargs.pop(k, None) for k in ("tls_ca_file", "tls_cert", "tls_key"))
    if not (ca or cert or key):
        return None
    from edgeort.farm.security import make_security

    return make_security(ca, cert, key)


def _say(message: str) -> None:
    click.echo(f"edgeort farm: {message}", err=True)


@click.group("farm")
def farm_group() -> None:
    """The device farm on Dask: start a scheduler, join this device, list workers."""


@farm_group.command("scheduler")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8786,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--dashboard", metavar="ADDRESS", default=None, help="Serve Dask's dashboard (needs bokeh)."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the address as one JSON line once listening."
)
@tls_options
def scheduler_command(
    host: str, port: int, dashboard: str | None, as_json: bool, **tls: Any
) -> None:
    """Start a farm scheduler (a Dask scheduler) and run until stopped."""
    security = security_from(tls)
    from edgeort.farm.scheduler import run_scheduler

    run_scheduler(
        host=host,
        port=port,
        dashboard=dashboard,
        security=security,
        on_ready=lambda addr: _ready(addr, as_json),
    )


def _ready(address: str, as_json: bool) -> None:
    if as_json:
        data = {"command": "farm scheduler", "schema": 1, "address": address}
        click.echo(json.dumps(data, sort_keys=True))
    _say(f"scheduler at {address}")


@farm_group.command("join")
@click.argument("address")
@click.option("--name", default=None, help="Worker name (default: host name and a number).")
@click.option(
    "--nthreads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Jobs at once (timing jobs stay one at a time).",
)
@click.option(
    "--retry",
    "retry_s",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between reconnection attempts.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print what this device advertises, then join."
)
@tls_options
def join_command(
    address: str, name: str | None, nthreads: int, retry_s: float, as_json: bool, **tls: Any
) -> None:
    """Make this device a farm worker of the scheduler at ADDRESS (HOST:PORT) until
    stopped; it reconnects when the scheduler restarts."""
    security = security_from(tls)
    from edgeort.farm.resources import advertise, summary
    from edgeort.farm.security import address_with_scheme
    from edgeort.farm.worker import join

    info = summary()
    resources = advertise(info)
    if as_json:
        click.echo(json.dumps({"summary": info, "resources": resources}, sort_keys=True))
    _say(f"advertising {', '.join(sorted(resources))}")
    join(
        address_with_scheme(address, security),
        name=name,
        nthreads=nthreads,
        security=security,
        retry_s=retry_s,
        info=info,
        on_state=_say,
    )


def _ls_lines(workers: list[dict[str, Any]], address: str) -> list[str]:
    lines = [f"{address}: {len(workers)} worker(s)"]
    for w in workers:
        s = w["summary"] or {}
        if not w["edgeort"]:
            lines.append(f"  {w['name']} ({w['address']}): not an edgeort worker")
            continue
        sim = f" (simulated: {', '.join(s['simulated'])})" if s.get("simulated") else ""
        lines.append(
            f"  {w['name']} ({w['address']}): {s.get('cpu')} {s.get('os')} {s.get('arch')}, "
            f"{s.get('cores')} cores, ORT {s.get('ort_version')}"
        )
        lines.append(f"    profiles: {', '.join(s.get('profiles') or ()) or '-'}{sim}")
        lines.append(f"    EPs: {', '.join(s.get('eps') or ()) or '-'}")
        if s.get("runtimes"):
            lines.append(f"    runtimes: {', '.join(s['runtimes'])}")
        lines.append(f"    build: {'yes' if s.get('build') else 'no'}")
    return lines


@farm_group.command("ls")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to reach the scheduler.",
)
@tls_options
def ls_command(address: str, as_json: bool, timeout: float, **tls: Any) -> None:
    """List the farm's workers with their probe summary and resources."""
    security = security_from(tls)
    from edgeort.farm.client import connect, list_workers

    with connect(address, security=security, timeout=timeout) as client:
        workers = list_workers(client)
    if as_json:
        data = {"command": "farm ls", "schema": 1, "address": address, "workers": workers}
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo("\n".join(_ls_lines(workers, address)))


def job_printer(as_json: bool, out: Any = None) -> Callable[[Any], None]:
    """Per-job progress: a status line on stderr, or with ``--json`` one JSON line."""

    def show(event: Any) -> None:
        if as_json and out is not None:
            out.write(json.dumps(event.to_json(), sort_keys=True) + "\n")
            out.flush()
            return
        if event.kind == "queued":
            return
        click.echo(f"[{event.done}/{event.total}] {event.job}: {event.message}", err=True)

    return show


def format_farm_bench(report: Any) -> list[str]:
    """One row per (variant, worker): the table of ``edgeort bench --farm``."""
    from edgeort.measure.text import table

    header = ["worker", "device", "variant", "EP", "p50", "p95", "p99", "load", "ORT build"]
    rows, failed = [], []
    for r in report.rows:
        if not r.get("ok"):
            why = r.get("skipped") or (r.get("error") or {}).get("message", "failed")
            failed.append(f"{r.get('variant')} on {r.get('worker')}: {why}")
            continue
        ep = f"{r['ep']} (simulated)" if r.get("simulated") else r["ep"]
        build = f"{r.get('ort_version')} {_commit(r.get('ort_build', ''))}".strip()
        rows.append(
            [
                str(r["worker"]), str(r["device"]), str(r["variant"]), ep,
                f"{r['p50_ms']:.4f}", f"{r['p95_ms']:.4f}", f"{r['p99_ms']:.4f}",
                f"{r['load_ms']:.1f}", build,
            ]
        )  # fmt: skip
    lines = ["latency in ms (load: session creation ms)", *table(header, rows)]
    lines += [f"failed {f}" for f in failed]
    lines += [f"skipped {k}: {v}" for k, v in report.skipped.items()]
    if report.merged is not None:
        lines.append(f"merged into {report.merged}")
    return lines


def _commit(build: str) -> str:
    for part in build.replace(",", " ").split():
        if part.startswith("git-commit-id="):
            return part.partition("=")[2]
    return ""


COMMANDS: list[click.Command] = [farm_group]
