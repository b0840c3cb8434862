"""Run inside a terminal by tests/ui/test_xterm.py: probe the graphics, show a test pattern, report.

Usage: ``python -m tests.ui.xterm_show PATTERN.png REPORT.txt`` draws the pattern with the
console's image widget at the top-left cell; once it is on screen the report file receives the
graphics mode and the cell size the probe found. ``python -m tests.ui.xterm_show --probe
REPORT.txt`` only probes the terminal (as the console does before it starts) and writes
``MODE CELL_WIDTH CELL_HEIGHT`` to the report.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from textual.app import App, ComposeResult

from tui_pacs.ui.graphics import probe, resolve
from tui_pacs.ui.widgets.image_view import ImageView


class ShowPattern(App[None]):
    """One image widget at the top-left, nothing else."""

    CSS = "Screen { background: black; } ImageView { width: 30; height: 12; align: left top; }"

    def __init__(self, image: Image.Image, report: Path, mode: str) -> None:
        super().__init__()
        self.image = image
        self.report = report
        self.mode = mode

    def compose(self) -> ComposeResult:
        yield ImageView(id="view")

    def on_mount(self) -> None:
        self.query_one(ImageView).show(self.image)
        self.set_timer(0.5, self._report)

    def _report(self) -> None:
        self.report.write_text(self.mode, encoding="utf-8")


def main() -> None:
    """Probe the terminal (before the app), then show the pattern until killed."""
    if sys.argv[1] == "--probe":
        mode, _reason, width, height = probe()
        Path(sys.argv[2]).write_text(f"{mode.value} {width} {height}", encoding="utf-8")
        return
    chosen = resolve(None)
    mode = f"{chosen.mode.value} {chosen.cell_width}x{chosen.cell_height}"
    ShowPattern(Image.open(sys.argv[1]), Path(sys.argv[2]), mode).run()


if __name__ == "__main__":
    main()
