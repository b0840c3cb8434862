"""The ``tui-pacs`` command: every action, scriptable, through the same services as the console.

The group and shared helpers live here; commands live in modules named after what they act on.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from tui_pacs import __version__
from tui_pacs.config import ENV_CONFIG, Config, load_config
from tui_pacs.errors import PacsError


def handle_errors[F: Callable[..., Any]](func: F) -> F:
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
@click.option(
    "--demo",
    is_flag=True,
    help="Console: fill an empty archive with a small demo archive (made locally) at start.",
)
@click.option(
    "--graphics",
    type=click.Choice(["auto", "sixel", "kitty", "halfcell", "none"]),
    default=None,
    help="Console: how images are drawn (default: $TUI_PACS_GRAPHICS, then [console] graphics, "
    "then auto: probe the terminal).",
)
@click.version_option(__version__, prog_name="tui-pacs")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, demo: bool, graphics: str | None) -> None:
    """tui-pacs: a departmental PACS that lives in the terminal.

    With no command, opens the console (it starts a node in-process when none is running).
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    if ctx.invoked_subcommand is None:
        cfg = _config(ctx)
        # Imported here so that serve, import and every other command never load Textual.
        from tui_pacs.ui import run_console

        try:
            run_console(cfg, demo=demo, graphics=graphics)
        except PacsError as exc:
            click.echo(f"{exc.title}: {exc.message}", err=True)
            sys.exit(1)




# Register the commands (imported for their side effect on ``main``).
from tui_pacs.cli import archive as _archive  # noqa: E402,F401
from tui_pacs.cli import commitment as _commitment  # noqa: E402,F401
from tui_pacs.cli import jobs as _jobs  # noqa: E402,F401
from tui_pacs.cli import nodes as _nodes  # noqa: E402,F401
from tui_pacs.cli import qr as _qr  # noqa: E402,F401
from tui_pacs.cli import remote as _remote  # noqa: E402,F401
from tui_pacs.cli import view as _view  # noqa: E402,F401
from tui_pacs.cli import worklist as _worklist  # noqa: E402,F401
