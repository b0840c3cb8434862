"""``tui-pacs nodes``: list the node registry; add, edit and remove its database nodes.

Nodes from the config file's ``[[nodes]]`` are listed with source ``config`` and are edited in
that file; nodes added here live in the database (source ``db``), where the console edits them
too. The running node picks changes up within a few seconds.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import click

from tui_pacs.cli import _config, handle_errors, main
from tui_pacs.model import DimseService, RemoteNode

_SERVICES_HELP = (
    "Services this AE may use when it calls us, comma-separated: "
    + ", ".join(s.value for s in DimseService)
    + " (or all, none)."
)


def _registry(ctx: click.Context) -> Any:
    from tui_pacs.services.nodes import NodeRegistry

    return NodeRegistry(_config(ctx))


def _echo_text(node: RemoteNode) -> str:
    echo = node.last_echo
    if echo is None:
        return "never"
    at = echo.at if echo.at.tzinfo else echo.at.replace(tzinfo=UTC)  # stored as naive UTC
    when = at.astimezone().strftime("%Y-%m-%d %H:%M")
    if echo.ok:
        latency = f" {echo.latency_ms:.0f} ms" if echo.latency_ms is not None else ""
        return f"ok{latency} {when}"
    return f"FAILED {when}: {echo.message}"


def _as_json(node: RemoteNode) -> dict[str, Any]:
    from tui_pacs.services.nodes import services_text

    echo = node.last_echo
    return {
        "name": node.name,
        "ae_title": node.ae_title,
        "host": node.host,
        "port": node.port,
        "description": node.description,
        "source": node.source.value,
        "allowed_services": [s for s in services_text(node.allowed_services).split(",") if s],
        "retrieve_method": node.retrieve_method,
        "last_echo": None
        if echo is None
        else {
            "at": (echo.at if echo.at.tzinfo else echo.at.replace(tzinfo=UTC)).isoformat(),
            "ok": echo.ok,
            "latency_ms": echo.latency_ms,
            "status": echo.status,
            "message": echo.message,
        },
    }


def _print_table(nodes: list[RemoteNode]) -> None:
    from tui_pacs.services.nodes import services_text

    rows = [
        (
            n.name,
            n.ae_title,
            f"{n.host}:{n.port}",
            n.source.value,
            services_text(n.allowed_services) or "none",
            n.retrieve_method,
            _echo_text(n),
        )
        for n in nodes
    ]
    heads = ("NAME", "AE TITLE", "ADDRESS", "SOURCE", "ALLOWED", "RETRIEVE", "LAST ECHO")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    for row in (heads, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@handle_errors
def nodes(ctx: click.Context, as_json: bool) -> None:
    """List the node registry (config file and database nodes); or add, edit, remove one."""
    if ctx.invoked_subcommand is None:
        _list(ctx, as_json)


def _list(ctx: click.Context, as_json: bool) -> None:
    registry = _registry(ctx)
    found = registry.nodes()
    if as_json:
        click.echo(json.dumps([_as_json(n) for n in found], indent=2))
        return
    if not found:
        click.echo("no nodes: add one with `tui-pacs nodes add` or in the config file's [[nodes]]")
        return
    _print_table(found)


@nodes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@handle_errors
def list_nodes(ctx: click.Context, as_json: bool) -> None:
    """List the node registry: name, AE title, address, source, permissions, last echo."""
    _list(ctx, as_json)


@nodes.command("add")
@click.argument("name")
@click.option("--ae-title", "-a", required=True, help="The node's AE title (1-16 characters).")
@click.option("--host", "-H", required=True, help="Host name or address it listens on.")
@click.option("--port", "-p", required=True, type=int, help="TCP port it listens on (1-65535).")
@click.option("--description", "-d", default="", help="Free text.")
@click.option("--allow", "services", default="all", show_default=True, help=_SERVICES_HELP)
@click.option(
    "--retrieve",
    "retrieve_method",
    type=click.Choice(["move", "get"]),
    default="move",
    show_default=True,
    help="How we retrieve from it: C-MOVE to our AE, or C-GET.",
)
@click.pass_context
@handle_errors
def add(
    ctx: click.Context,
    name: str,
    ae_title: str,
    host: str,
    port: int,
    description: str,
    services: str,
    retrieve_method: str,
) -> None:
    """Add a node to the database registry."""
    node = _registry(ctx).add(
        name,
        ae_title,
        host,
        port,
        description=description,
        allowed_services=services,
        retrieve_method=retrieve_method,
    )
    click.echo(f"added {node.name} ({node.ae_title}@{node.host}:{node.port})")


@nodes.command("edit")
@click.argument("name")
@click.option("--name", "new_name", default=None, help="Rename the node.")
@click.option("--ae-title", "-a", default=None, help="New AE title.")
@click.option("--host", "-H", default=None, help="New host.")
@click.option("--port", "-p", default=None, type=int, help="New port.")
@click.option("--description", "-d", default=None, help="New description.")
@click.option("--allow", "services", default=None, help=_SERVICES_HELP)
@click.option("--retrieve", "retrieve_method", type=click.Choice(["move", "get"]), default=None,
              help="How we retrieve from it.")
@click.pass_context
@handle_errors
def edit(
    ctx: click.Context,
    name: str,
    new_name: str | None,
    ae_title: str | None,
    host: str | None,
    port: int | None,
    description: str | None,
    services: str | None,
    retrieve_method: str | None,
) -> None:
    """Change a database node (options left out keep their value)."""
    node = _registry(ctx).edit(
        name,
        new_name=new_name,
        ae_title=ae_title,
        host=host,
        port=port,
        description=description,
        allowed_services=services,
        retrieve_method=retrieve_method,
    )
    click.echo(f"updated {node.name} ({node.ae_title}@{node.host}:{node.port})")


@nodes.command("remove")
@click.argument("name")
@click.pass_context
@handle_errors
def remove(ctx: click.Context, name: str) -> None:
    """Remove a node from the database registry."""
    _registry(ctx).remove(name)
    click.echo(f"removed {name}")
