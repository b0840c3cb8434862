"""The log screen: what the console and its node logged (the same lines go to the log file)."""

from __future__ import annotations

import logging

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Label, RichLog

from tui_pacs.ui.screens.base import ConsoleScreen

_STYLES = {logging.WARNING: "yellow", logging.ERROR: "bold red", logging.CRITICAL: "bold red"}


class LogScreen(ConsoleScreen):
    """Recent log lines, following new ones while open."""

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("c", "clear", "Clear view"),
    ]

    DEFAULT_CSS = """
    LogScreen #log-title { width: 1fr; padding: 0 1; background: $primary-background; }
    LogScreen RichLog { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def compose_body(self) -> ComposeResult:
        yield Label("", id="log-title")
        yield RichLog(id="log", wrap=False, highlight=False, max_lines=2000)

    def on_mount(self) -> None:
        self.query_one("#log-title", Label).update(f"Log (also in {self.context.config.log_file})")
        self.seen = 0
        self.follow_log()
        self.set_interval(0.5, self.follow_log)
        self.query_one(RichLog).focus()

    def follow_log(self) -> None:
        """Append the lines logged since the last look."""
        total, lines = self.console.log_buffer.since(self.seen)
        self.seen = total
        view = self.query_one(RichLog)
        for level, line in lines:
            view.write(Text(line, style=_STYLES.get(level, "")))

    def action_clear(self) -> None:
        """Empty the view (the log file keeps everything)."""
        self.query_one(RichLog).clear()

    def action_close(self) -> None:
        """Back to the previous screen."""
        self.dismiss()
