"""The node status bar: AE title, port, live associations, last instance received, jobs running."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text
from textual.widgets import Static

from tui_pacs.model import NodeStatus


def _local(at: datetime) -> datetime:
    """A naive UTC time from the index as local time."""
    return at.replace(tzinfo=UTC).astimezone().replace(tzinfo=None)


def describe_age(at: datetime | None, now: datetime) -> str:
    """``at`` (naive UTC) as a short local time: ``14:03:12`` today, ``28 Nov 14:03`` before."""
    if at is None:
        return "none yet"
    local = _local(at)
    if local.date() == now.date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%d %b %H:%M")


class NodeStatusBar(Static):
    """One line about the node serving this archive (docked at the bottom of every screen)."""

    DEFAULT_CSS = """
    NodeStatusBar { height: 1; width: 1fr; background: $panel; color: $text; padding: 0 1; }
    NodeStatusBar.-down { background: $error 40%; }
    """

    def show_status(
        self, status: NodeStatus | None, hosted: bool, problem: str, now: datetime
    ) -> None:
        """Draw the line for this status (None: no node is alive)."""
        self.set_class(status is None, "-down")
        text = Text(no_wrap=True, overflow="ellipsis")
        if status is None:
            text.append("● ", style="bold red")
            text.append("no node running" if not problem else f"no node: {problem}")
            self.update(text)
            return
        text.append("● ", style="bold green")
        text.append(status.ae_title, style="bold")
        text.append(f" :{status.port}")
        text.append(" (this console)" if hosted else f" (pid {status.pid})", style="dim")
        text.append(f" │ {status.associations} assoc")
        text.append(f" │ last image {describe_age(status.last_instance_at, now)}")
        text.append(
            f" │ {status.jobs_running} job{'s' if status.jobs_running != 1 else ''} running"
        )
        self.update(text)
