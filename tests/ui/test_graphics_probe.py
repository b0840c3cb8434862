"""The graphics probe against fake terminals: a child process on a pty, the test answering it.

The child runs :func:`tui_pacs.ui.graphics.resolve` as the console does before it starts; the
test plays the terminal on the pty's other end and answers the queries it sees as kitty, xterm,
wezterm or a silent terminal would: the kitty graphics query (``ESC _G ... a=q``), the cell size
(``CSI 16 t``), XTVERSION (``CSI > 0 q``) and the primary device attributes (``CSI c``, where
``4`` means sixel). Kitty's unicode placeholders need kitty 0.28 or later.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tui_pacs.ui.graphics import ENV_GRAPHICS

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
from tui_pacs.ui.graphics import resolve
cli, configured, out = sys.argv[1] or None, sys.argv[2] or None, sys.argv[3]
chosen = resolve(cli, configured)
with open(out, "w") as f:
    json.dump([chosen.mode.value, chosen.cell_width, chosen.cell_height, chosen.reason], f)
"""

#: The queries a probe sends, and how each fake terminal kind is asked about them.
_QUERY = re.compile(rb"\x1b_G[^\x1b]*\x1b\\|\x1b\[16t|\x1b\[>0q|\x1b\[c")
_TGP_ID = re.compile(rb"i=(\d+)")


@dataclass(frozen=True)
class FakeTerminal:
    """How a terminal answers the probe.

    Attributes:
        graphics: Answers the kitty graphics query with OK.
        sixel: Lists 4 (sixel) in its primary device attributes.
        version: Its XTVERSION answer (``kitty(0.35.2)``), or "" for none.
        cell: Cell size in pixels it reports to ``CSI 16 t``.
        silent: Answers nothing at all.
    """

    graphics: bool = False
    sixel: bool = False
    version: str = ""
    cell: tuple[int, int] = (9, 18)
    silent: bool = False

    def answer(self, query: bytes) -> bytes:
        """The terminal's reply to one query."""
        if self.silent:
            return b""
        if query.startswith(b"\x1b_G"):
            if not self.graphics:
                return b""
            found = _TGP_ID.search(query)
            image_id = found.group(1) if found else b"1"
            return b"\x1b_Gi=" + image_id + b";OK\x1b\\"
        if query == b"\x1b[16t":
            return b"\x1b[6;%d;%dt" % (self.cell[1], self.cell[0])
        if query == b"\x1b[>0q":
            return b"\x1bP>|" + self.version.encode() + b"\x1b\\" if self.version else b""
        attributes = b"62;4;22" if self.sixel else b"62;22"
        return b"\x1b[?" + attributes + b"c"


@dataclass
class Probed:
    """What the child decided, and every query it sent."""

    mode: str
    cell: tuple[int, int]
    reason: str
    queries: list[bytes]


def probe_with(
    terminal: FakeTerminal,
    tmp_path: Path,
    *,
    cli: str = "",
    configured: str = "",
    env: str | None = None,
    winsize: tuple[int, int, int, int] = (24, 80, 0, 0),
) -> Probed:
    """Run resolve(cli, configured) in a child on a pty that ``terminal`` answers.

    ``winsize`` is the pty's (rows, columns, width px, height px): with no pixel size the probe
    asks the terminal for its cell size.
    """
    out = tmp_path / "chosen.json"
    environ = {k: v for k, v in os.environ.items() if k != ENV_GRAPHICS}
    environ.pop("TMUX", None)  # textual-image wraps its queries for tmux
    if env is not None:
        environ[ENV_GRAPHICS] = env
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *winsize))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, cli, configured, str(out)],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=environ,
        close_fds=True,
    )
    os.close(slave)
    buffer, queries = b"", []
    deadline = time.monotonic() + 30
    try:
        while child.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                continue
            try:
                buffer += os.read(master, 4096)
            except OSError:  # the child closed the pty
                break
            while (found := _QUERY.search(buffer)) is not None:
                queries.append(found.group(0))
                buffer = buffer[found.end() :]
                reply = terminal.answer(found.group(0))
                if reply:
                    os.write(master, reply)
        child.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
    stderr = child.stderr.read().decode() if child.stderr else ""
    assert child.returncode == 0 and out.exists(), stderr
    mode, width, height, reason = json.loads(out.read_text())
    return Probed(mode, (width, height), reason, queries)


KITTY_027 = FakeTerminal(graphics=True, version="kitty(0.27.1)", cell=(10, 21))
KITTY_028 = FakeTerminal(graphics=True, version="kitty(0.28.0)", cell=(10, 21))
KITTY_035 = FakeTerminal(graphics=True, version="kitty(0.35.2)", cell=(10, 21))
XTERM_SIXEL = FakeTerminal(sixel=True, version="XTerm(390)", cell=(6, 13))
XTERM_PLAIN = FakeTerminal(version="XTerm(390)", cell=(6, 13))
WEZTERM = FakeTerminal(graphics=True, sixel=True, version="WezTerm 20240203", cell=(8, 16))


@pytest.mark.parametrize(
    ("terminal", "mode", "reason"),
    [
        (KITTY_027, "halfcell", "no sixel or kitty graphics"),  # placeholders came in 0.28
        (KITTY_028, "kitty", "kitty 0.28"),
        (KITTY_035, "kitty", "kitty 0.35"),
        (XTERM_SIXEL, "sixel", "terminal reports sixel"),
        (XTERM_PLAIN, "halfcell", "no sixel or kitty graphics"),
        (WEZTERM, "sixel", "terminal reports sixel"),  # kitty graphics, but not kitty's version
    ],
    ids=["kitty-0.27", "kitty-0.28", "kitty-0.35", "xterm-sixel", "xterm-plain", "wezterm"],
)
def test_probe_picks_by_the_answers(
    terminal: FakeTerminal, mode: str, reason: str, tmp_path: Path
) -> None:
    """auto: kitty >= 0.28 gets kitty, a sixel terminal sixel, others half-blocks; cells read."""
    probed = probe_with(terminal, tmp_path)
    assert probed.mode == mode and reason in probed.reason
    assert probed.cell == terminal.cell
    asked_version = b"\x1b[>0q" in probed.queries
    assert asked_version == terminal.graphics  # XTVERSION only for kitty-graphics terminals


def test_silent_terminal_gets_half_blocks(tmp_path: Path) -> None:
    """A terminal that answers nothing: half-blocks after the probe's timeout, default cells."""
    probed = probe_with(FakeTerminal(silent=True), tmp_path)
    assert probed.mode == "halfcell" and probed.cell == (10, 20)


@pytest.mark.parametrize(
    ("kwargs", "terminal", "mode", "probes"),
    [
        ({"cli": "kitty"}, XTERM_SIXEL, "kitty", True),  # forced: cell size still probed
        ({"cli": "sixel"}, KITTY_035, "sixel", True),
        ({"cli": "halfcell", "env": "kitty"}, KITTY_035, "halfcell", False),
        ({"env": "none"}, KITTY_035, "none", False),
        ({"env": "sixel", "configured": "kitty"}, KITTY_027, "sixel", True),
        ({"configured": "halfcell"}, XTERM_SIXEL, "halfcell", False),
        ({"configured": "auto"}, KITTY_028, "kitty", True),
    ],
    ids=["cli-kitty", "cli-sixel", "cli-over-env", "env-none", "env-over-config", "config", "auto"],
)
def test_overrides_beat_the_probe(
    kwargs: dict[str, str], terminal: FakeTerminal, mode: str, probes: bool, tmp_path: Path
) -> None:
    """--graphics, then $TUI_PACS_GRAPHICS, then [console] graphics; half-blocks ask nothing."""
    probed = probe_with(terminal, tmp_path, **kwargs)
    assert probed.mode == mode
    assert bool(probed.queries) == probes
    if probes:
        assert probed.cell == terminal.cell


def test_cell_size_from_the_window_size(tmp_path: Path) -> None:
    """A pty reporting its size in pixels gives the cell size without asking the terminal."""
    probed = probe_with(XTERM_SIXEL, tmp_path, winsize=(24, 80, 640, 384))
    assert probed.mode == "sixel" and probed.cell == (8, 16)
    assert b"\x1b[16t" not in probed.queries


@pytest.mark.parametrize("cli", ["", "sixel", "kitty"])
def test_terminal_without_a_size(cli: str, tmp_path: Path) -> None:
    """0 columns and rows (a bare pty): half-blocks, nothing asked (textual-image would crash)."""
    probed = probe_with(KITTY_035, tmp_path, cli=cli, winsize=(0, 0, 0, 0))
    assert probed.mode == "halfcell" and "no size" in probed.reason
    assert probed.queries == []
