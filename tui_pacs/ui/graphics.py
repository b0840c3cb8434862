"""Which picture protocol the console draws images with: probed before the app starts, or chosen.

Order of precedence: ``--graphics`` on the command line, then ``$TUI_PACS_GRAPHICS``, then
``[console] graphics`` in the configuration, then the probe (``auto``). The probe asks the
terminal once, before Textual owns stdin (textual-image's batched query: Terminal Graphics
Protocol, cell size, primary device attributes for sixel), plus XTVERSION to tell kitty's
version: textual-image draws kitty images with unicode placeholders, which kitty understands
from 0.28 on, so older kittys and other terminals answering the graphics query (wezterm,
konsole) get sixel when they have it and half-blocks otherwise.
"""

from __future__ import annotations

import enum
import os
import re
import sys
from dataclasses import dataclass

#: Environment variable overriding the configuration and the probe.
ENV_GRAPHICS = "TUI_PACS_GRAPHICS"
#: Kitty learnt unicode placeholders in this version.
KITTY_PLACEHOLDERS = (0, 28)
#: Probe reason of a terminal reporting 0 columns or rows (some serial consoles, bare ptys).
NO_SIZE = "terminal reports no size"
_XTVERSION = re.compile(r"\x1bP>\|([^\x1b]*)\x1b\\")
_KITTY = re.compile(r"kitty\((\d+)\.(\d+)")


class GraphicsMode(enum.StrEnum):
    """How images are drawn."""

    AUTO = "auto"
    SIXEL = "sixel"
    KITTY = "kitty"
    HALFCELL = "halfcell"
    NONE = "none"


CHOICES = tuple(m.value for m in GraphicsMode)


@dataclass(frozen=True, slots=True)
class Graphics:
    """The protocol in use and the terminal's cell size in pixels.

    Attributes:
        mode: Never AUTO once resolved.
        cell_width: Pixels per cell, horizontally (sixel and kitty scale to it).
        cell_height: Pixels per cell, vertically.
        reason: Why this mode (shown in the log and the help screen).
    """

    mode: GraphicsMode
    cell_width: int = 10
    cell_height: int = 20
    reason: str = ""


#: Used until :func:`resolve` ran (the tests draw half-blocks).
DEFAULT = Graphics(GraphicsMode.HALFCELL, reason="default")
_current: Graphics = DEFAULT


def current() -> Graphics:
    """The graphics chosen for this process."""
    return _current


def set_current(graphics: Graphics) -> None:
    """Choose the graphics for this process (the tests use it to draw sixel)."""
    global _current
    _current = graphics


def parse_mode(value: str, where: str) -> GraphicsMode:
    """A mode name, or a ValueError naming ``where`` and the choices."""
    try:
        return GraphicsMode(value.strip().lower())
    except ValueError:
        raise ValueError(
            f"{where}: {value!r} is not a graphics mode; allowed: {', '.join(CHOICES)}"
        ) from None


def _kitty_version() -> tuple[int, int] | None:
    """Ask the terminal its name and version (XTVERSION); only before the app starts."""
    from textual_image._terminal import capture_until_primary_da

    try:
        with capture_until_primary_da(0.5) as response:
            assert sys.__stdout__ is not None
            sys.__stdout__.write("\x1b[>0q\x1b[c")
            sys.__stdout__.flush()
    except Exception:  # noqa: BLE001 - a terminal that does not answer is simply not kitty
        return None
    found = _XTVERSION.search(response.sequence)
    if not found:
        return None
    version = _KITTY.search(found.group(1))
    return (int(version.group(1)), int(version.group(2))) if version else None


def probe() -> tuple[GraphicsMode, str, int, int]:
    """Probe the terminal: (mode, reason, cell width, cell height)."""
    if not (
        sys.__stdout__ and sys.__stdout__.isatty() and sys.__stdin__ and sys.__stdin__.isatty()
    ):
        return GraphicsMode.HALFCELL, "not a terminal", 10, 20
    try:
        size = os.get_terminal_size(sys.__stdout__.fileno())
    except OSError:
        size = os.terminal_size((0, 0))
    if not size.columns or not size.lines:
        # textual-image divides by the size: importing it would raise ZeroDivisionError.
        return GraphicsMode.HALFCELL, NO_SIZE, 10, 20
    # Importing the widgets probes the terminal once and caches the answer (it must happen
    # before Textual reads stdin).
    import textual_image.widget  # noqa: F401
    from textual_image._terminal import probe_terminal

    caps = probe_terminal()
    width, height = caps.cell_size
    if caps.tgp:
        version = _kitty_version()
        if version is not None and version >= KITTY_PLACEHOLDERS:
            return GraphicsMode.KITTY, f"kitty {version[0]}.{version[1]}", width, height
    if caps.sixel:
        return GraphicsMode.SIXEL, "terminal reports sixel", width, height
    return GraphicsMode.HALFCELL, "no sixel or kitty graphics reported", width, height


def resolve(cli: str | None, configured: str | None = None) -> Graphics:
    """Decide the graphics for the console (CLI, then environment, then config, then probe).

    Call it before the app runs: ``auto`` talks to the terminal.
    """
    chosen, source = GraphicsMode.AUTO, "auto"
    env = os.environ.get(ENV_GRAPHICS, "")
    if cli:
        chosen, source = parse_mode(cli, "--graphics"), "--graphics"
    elif env.strip():
        chosen, source = parse_mode(env, f"${ENV_GRAPHICS}"), f"${ENV_GRAPHICS}"
    elif configured:
        chosen, source = parse_mode(configured, "[console] graphics"), "[console] graphics"
    if chosen is GraphicsMode.AUTO:
        mode, reason, width, height = probe()
        result = Graphics(mode, width, height, f"probe: {reason}")
    elif chosen in (GraphicsMode.SIXEL, GraphicsMode.KITTY):
        _, reason, width, height = probe()
        if reason == NO_SIZE:  # the image widgets cannot be loaded on such a terminal
            result = Graphics(GraphicsMode.HALFCELL, reason=f"{source} {chosen.value}: {reason}")
        else:
            result = Graphics(chosen, width, height, source)
    else:
        result = Graphics(chosen, reason=source)
    set_current(result)
    return result
