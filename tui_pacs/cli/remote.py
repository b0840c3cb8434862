"""Commands that talk to remote nodes: echo, send."""

from __future__ import annotations

import json
import sys

import click

from tui_pacs.cli import _config, handle_errors, main


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
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--to", "to", required=True, help="Destination node (name, or AE@HOST:PORT).")
@click.option(
    "--study", "study_uids", multiple=True, help="An archived study to send (repeatable)."
)
@click.option(
    "--series", "series_uids", multiple=True, help="An archived series to send (repeatable)."
)
@click.option("--detach", is_flag=True, help="Return at once with the job id (needs `serve`).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
@handle_errors
def send(
    ctx: click.Context,
    paths: tuple[str, ...],
    to: str,
    study_uids: tuple[str, ...],
    series_uids: tuple[str, ...],
    detach: bool,
    quiet: bool,
) -> None:
    """Send files or folders, or archived studies/series, to a node with C-STORE, as a job.

    The running node does the work, so it goes on if this terminal goes away. Without --detach
    the command waits with a progress bar; exit status 0 when every instance was sent.
    """
    from tui_pacs.cli.jobs import run_job
    from tui_pacs.services import remote
    from tui_pacs.services.jobs import queue_send

    if not paths and not study_uids and not series_uids:
        raise click.UsageError("give PATHS, --study UID or --series UID to send")
    cfg = _config(ctx)
    node = remote.resolve_node(cfg, to)
    run_job(
        cfg,
        lambda: queue_send(
            cfg, node, paths=paths, study_instance_uids=study_uids, series_instance_uids=series_uids
        ),
        label=f"Sending to {node.ae_title}",
        detach=detach,
        quiet=quiet,
    )
