"""Messages the console app sends to its screens (from the pollers in thread workers)."""

from __future__ import annotations

from textual.message import Message

from tui_pacs.model import ChangeEvent, NodeStatus


class ChangesArrived(Message, bubble=False):
    """New rows in the change feed (instances stored, studies created, jobs moved ...)."""

    def __init__(self, events: tuple[ChangeEvent, ...]) -> None:
        super().__init__()
        self.events = events

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds of change in this batch."""
        return frozenset(e.kind for e in self.events)


class NodeStatusChanged(Message, bubble=False):
    """The node serving this archive, as its heartbeat last said (None: no node alive)."""

    def __init__(self, status: NodeStatus | None, hosted: bool, problem: str = "") -> None:
        super().__init__()
        self.status = status
        self.hosted = hosted
        self.problem = problem
