"""Commands that run or fill the local node: config, serve, import."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import click

from tui_pacs.cli import _config, handle_errors, main
from tui_pacs.config import ENV_CONFIG, describe, user_config_dir, user_data_dir
from tui_pacs.errors import PacsError


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
    # Nodes added with `nodes add` or in the console live in the database, not in this file.
    registry = "(`tui-pacs nodes` lists the whole registry, database nodes too)"
    if cfg.nodes:
        click.echo(f"remote nodes of the config file {registry}:")
        for node in cfg.nodes:
            services = ",".join(sorted(s.value for s in node.allowed_services))
            click.echo(
                f"  {node.name}: {node.ae_title}@{node.host}:{node.port} "
                f"(retrieve by {node.retrieve_method}; may use {services})"
            )
    else:
        click.echo(f"remote nodes of the config file: none {registry}")


@main.command()
@click.option("--port", type=click.IntRange(0, 65535), help="Override the listening port.")
@click.option("--bind", "bind_address", help="Override the bind address.")
@click.option("--ae-title", help="Override our AE title.")
@click.pass_context
@handle_errors
def serve(
    ctx: click.Context, port: int | None, bind_address: str | None, ae_title: str | None
) -> None:
    """Run the node: the DICOM listener (C-ECHO, C-STORE) over the archive.

    Stops cleanly on SIGTERM or Ctrl-C after finishing the stores in flight.
    """
    from tui_pacs.config import validate_ae_title
    from tui_pacs.errors import ConfigError
    from tui_pacs.services.node import serve as run
    from tui_pacs.services.node import setup_logging

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


