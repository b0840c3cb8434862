"""What every full screen of the console has: its body, the node status bar and the footer."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from tui_pacs.ui.messages import ChangesArrived, NodeStatusChanged
from tui_pacs.ui.widgets.status_bar import NodeStatusBar

if TYPE_CHECKING:
    from tui_pacs.ui.app import PacsApp
    from tui_pacs.ui.context import ConsoleContext


class ConsoleScreen(Screen[None]):
    """A full screen that follows the node status and the change feed.

    Subclasses compose their body in :meth:`compose_body` and react to :class:`ChangesArrived`
    with ``on_changes_arrived``.
    """

    @property
    def console(self) -> PacsApp:
        """The console app (typed)."""
        from tui_pacs.ui.app import PacsApp

        return cast(PacsApp, self.app)

    @property
    def context(self) -> ConsoleContext:
        """Configuration, services and clock of this console."""
        return self.console.context

    def compose(self) -> ComposeResult:
        yield from self.compose_body()
        yield NodeStatusBar(id="node-status")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets."""
        yield from ()

    def on_mount(self) -> None:
        self.console.follow(self)
        last = self.console.last_status
        if last is not None:
            self.on_node_status_changed(last)

    def on_node_status_changed(self, message: NodeStatusChanged) -> None:
        self.query_one(NodeStatusBar).show_status(
            message.status, message.hosted, message.problem, self.context.now()
        )

    def on_changes_arrived(self, message: ChangesArrived) -> None:
        """Override to refresh what the changes touch."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Workers run with exit_on_error=False: their failures end up in the error dialog.
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.console.show_error(event.worker.error)
