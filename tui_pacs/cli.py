"""The ``tui-pacs`` command: every action, scriptable, through the same services as the console."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from tui_pacs import __version__
from tui_pacs.config import (
    ENV_CONFIG,
    Config,
    describe,
    load_config,
    user_config_dir,
    user_data_dir,
)
from tui_pacs.errors import PacsError

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Print a PacsError as ``Title: message`` on stderr and exit 1, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PacsError as exc:
            click.echo(f"{exc.title}: {exc.message}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _config(ctx: click.Context) -> Config:
    cfg = ctx.obj.get("config")
    if cfg is None:
        try:
            cfg = load_config(ctx.obj.get("config_path"))
        except PacsError as exc:
            click.echo(f"{exc.title}: {exc.message}", err=True)
            sys.exit(2)
        ctx.obj["config"] = cfg
    return cfg


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help=f"Configuration file (default: ${ENV_CONFIG}, then the user config folder).",
)
@click.version_option(__version__, prog_name="tui-pacs")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """tui-pacs: a departmental PACS that lives in the terminal."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@main.command("config")
@click.pass_context
def config_cmd(ctx: click.Context) -> None:
    """Print the effective configuration and every path used."""
    cfg = _config(ctx)
    click.echo(f"config file      {cfg.source or '(none: built-in defaults)'}")
    click.echo(f"lookup order     --config, ${ENV_CONFIG}, {user_config_dir() / 'config.toml'}")
    click.echo(f"user data folder {user_data_dir()}")
    click.echo("")
    width = max(len(k) for k, _ in describe(cfg))
    for key, value in describe(cfg):
        click.echo(f"{key.ljust(width)}  {value}")
    click.echo("")
    if cfg.nodes:
        click.echo("remote nodes:")
        for node in cfg.nodes:
            services = ",".join(sorted(s.value for s in node.allowed_services))
            click.echo(
                f"  {node.name}: {node.ae_title}@{node.host}:{node.port} "
                f"(retrieve by {node.retrieve_method}; may use {services})"
            )
    else:
        click.echo("remote nodes: none")


@main.command()
@click.option("--port", type=click.IntRange(0, 65535), help="Override the listening port.")
@click.option("--bind", "bind_address", help="Override the bind address.")
@click.option("--ae-title", help="Override our AE title.")
@click.pass_context
@handle_errors
def serve(ctx: click.Context, port: int | None, bind_address: str | None, ae_title: str | None) -> None:
    """Run the node: the DICOM listener (C-ECHO, C-STORE) over the archive.

    Stops cleanly on SIGTERM or Ctrl-C after finishing the stores in flight.
    """
    from tui_pacs.config import validate_ae_title
    from tui_pacs.errors import ConfigError
    from tui_pacs.services.node import serve as run, setup_logging

    cfg = _config(ctx)
    overrides: dict[str, Any] = {}
    if port is not None:
        overrides["port"] = port
    if bind_address:
        overrides["bind_address"] = bind_address
    if ae_title:
        try:
            overrides["ae_title"] = validate_ae_title(ae_title, "--ae-title")
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from exc
    cfg = replace(cfg, **overrides)
    setup_logging(cfg, to_stderr=True)

    def ready(node: Any) -> None:
        click.echo(
            f"tui-pacs node {cfg.ae_title} listening on {cfg.bind_address}:{node.port} "
            f"(archive {cfg.storage_path}); Ctrl-C to stop",
            err=True,
        )

    try:
        run(cfg, on_ready=ready)
    except OSError as exc:
        raise PacsError(
            f"cannot listen on {cfg.bind_address}:{cfg.port}: {exc.strerror or exc}",
            "Listener failed",
        ) from exc


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
@handle_errors
def import_cmd(ctx: click.Context, paths: tuple[str, ...], quiet: bool) -> None:
    """Import files, folders (recursively), DICOMDIR media and zip archives.

    Every file that cannot be imported is listed with its reason; the batch goes on.
    Exit status: 0 when nothing was rejected, 1 otherwise.
    """
    import logging

    from tui_pacs.services.importer import import_paths, iter_sources
    from tui_pacs.services.ingest import Ingestor

    cfg = _config(ctx)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    problems: list = []
    total = sum(1 for _ in iter_sources(paths, problems))
    ingestor = Ingestor(cfg)
    try:
        if quiet or total == 0:
            summary = import_paths(ingestor, paths)
        else:
            with click.progressbar(
                length=total, label="Importing", file=sys.stderr, show_pos=True
            ) as bar:
                summary = import_paths(ingestor, paths, on_progress=lambda s, name: bar.update(1))
    finally:
        ingestor.close()
    for problem in summary.problems:
        click.echo(f"rejected: {problem.path}: {problem.reason}", err=True)
    click.echo(
        f"imported {summary.imported}, duplicates {summary.duplicates}, "
        f"rejected {summary.rejected}"
    )
    sys.exit(1 if summary.rejected else 0)


@main.command()
@click.argument("node", required=False)
@click.option("--all", "all_nodes", is_flag=True, help="Echo every configured node.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@handle_errors
def echo(ctx: click.Context, node: str | None, all_nodes: bool, as_json: bool) -> None:
    """C-ECHO a node (a configured name, or AE@HOST:PORT), or --all of them."""
    from tui_pacs.services import remote

    cfg = _config(ctx)
    if all_nodes:
        results = remote.echo_all(cfg)
    elif node:
        results = [remote.echo(cfg, remote.resolve_node(cfg, node))]
    else:
        raise click.UsageError("give a NODE or --all")
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "node": r.node,
                        "ok": r.ok,
                        "latency_ms": r.latency_ms,
                        "status": r.status,
                        "message": r.message,
                    }
                    for r in results
                ],
                indent=2,
            )
        )
    else:
        for r in results:
            latency = f"{r.latency_ms:.1f} ms" if r.latency_ms is not None else "-"
            click.echo(f"{r.node:<24} {'OK' if r.ok else 'FAILED':<7} {latency:>10}  {r.message}")
    sys.exit(0 if results and all(r.ok for r in results) else 1)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--to", "to", required=True, help="Destination node (name, or AE@HOST:PORT).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
@handle_errors
def send(ctx: click.Context, paths: tuple[str, ...], to: str, quiet: bool) -> None:
    """Send DICOM files or folders to a node with C-STORE."""
    from tui_pacs.net.status import describe as status_text
    from tui_pacs.services import remote

    cfg = _config(ctx)
    node = remote.resolve_node(cfg, to)
    files = remote.collect_files(paths)
    last = None
    errors: list[str] = []
    with click.progressbar(
        length=len(files), label=f"Sending to {node.ae_title}", file=sys.stderr,
        show_pos=True, hidden=quiet,
    ) as bar:
        for progress in remote.send(cfg, node, files):
            bar.update(1)
            last = progress
            if progress.last_error:
                errors.append(f"{progress.last_sop_instance_uid}: {progress.last_error}")
    for line in errors:
        click.echo(f"failed: {line}", err=True)
    if last is None:
        click.echo("nothing to send")
        return
    click.echo(
        f"sent {last.completed} of {last.total} (warnings {last.warning}, failed {last.failed})"
    )
    if last.last_status is not None and last.failed:
        click.echo(f"last status: {status_text(last.last_status)}", err=True)
    sys.exit(0 if last.failed == 0 else 1)
