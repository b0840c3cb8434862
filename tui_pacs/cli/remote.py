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
