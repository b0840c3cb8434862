"""Run inside a terminal by tests/ui/test_xterm.py: probe the graphics, show a test pattern, report.

Usage: ``python -m tests.ui.xterm_show PATTERN.png REPORT.txt``. The pattern is drawn by the
console's image widget at the top-left cell; once it is on screen the report file receives the
graphics mode and the cell size the probe found.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from textual.app import App, ComposeResult

from tui_pacs.ui.graphics import resolve
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
    chosen = resolve(None)
    mode = f"{chosen.mode.value} {chosen.cell_width}x{chosen.cell_height}"
    ShowPattern(Image.open(sys.argv[1]), Path(sys.argv[2]), mode).run()


if __name__ == "__main__":
    main()
