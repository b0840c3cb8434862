"""The console app: wires the screens, finds (or starts) the node, follows the change feed.

Screens own the features; the app only switches between them, polls the node heartbeat and the
change feed in thread workers and hands what it learns to the screens that follow it, and shows
errors in the one error dialog.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message_pump import MessagePump
from textual.screen import Screen
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from tui_pacs.errors import PacsError
from tui_pacs.services.status import ensure_node, node_status
from tui_pacs.ui.context import ConsoleContext
from tui_pacs.ui.dialogs.confirm import ConfirmDialog
from tui_pacs.ui.dialogs.error import ErrorDialog
from tui_pacs.ui.log_buffer import LogBuffer
from tui_pacs.ui.messages import ChangesArrived, NodeStatusChanged
from tui_pacs.ui.screens.archive import ArchiveScreen
from tui_pacs.ui.screens.help import HelpScreen, binding_rows, help_widgets
from tui_pacs.ui.screens.log import LogScreen

if TYPE_CHECKING:
    from tui_pacs.services.node import Node

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModeSpec:
    """A top-level screen of the console, reached with one key."""

    name: str
    key: str
    title: str
    screen: Callable[[], Screen[None]]


def lazy_screen(module: str, name: str) -> Callable[[], Screen[None]]:
    """A screen factory that imports its module on first use.

    The screens besides the archive pull in the network stack (pynetdicom, pydicom); importing
    them on first use keeps the console's start-up short. (Importing them ahead in a thread
    was tried: it holds the GIL long enough to stall the UI for 0.3 s at a time.)
    """

    def build() -> Screen[None]:
        return cast(Screen[None], getattr(importlib.import_module(module), name)())

    return build


#: The console's top-level screens, in key order.
MODE_SPECS: list[ModeSpec] = [
    ModeSpec("archive", "1", "Archive", ArchiveScreen),
    ModeSpec("remote", "2", "Remote", lazy_screen("tui_pacs.ui.screens.remote", "RemoteScreen")),
    ModeSpec(
        "transfers", "3", "Transfers",
        lazy_screen("tui_pacs.ui.screens.transfers", "TransfersScreen"),
    ),
    ModeSpec("nodes", "4", "Nodes", lazy_screen("tui_pacs.ui.screens.nodes", "NodesScreen")),
    ModeSpec("desk", "5", "Desk", lazy_screen("tui_pacs.ui.screens.desk", "DeskScreen")),
]  # fmt: skip


class PacsApp(App[None]):
    """The tui-pacs console.

    Args:
        context: Configuration, services, clock and pollers (see :func:`create_app`).
    """

    TITLE = "tui-pacs"
    BINDINGS = [
        *(Binding(m.key, f"switch_mode('{m.name}')", m.title) for m in MODE_SPECS),
        Binding("question_mark,f1", "help", "Help"),
        Binding("L", "show_log", "Log"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, context: ConsoleContext) -> None:
        super().__init__()
        self.context = context
        self.log_buffer = LogBuffer()
        #: The node this console started (None while another process serves the archive).
        self.hosted_node: Node | None = None
        #: The start-up search for a node is over: from then on, the status poll starts a node
        #: here when none is alive any more (the one this console used stopped or died).
        self._node_searched = False
        self.last_change_id = 0
        self.last_status: NodeStatusChanged | None = None
        self._followers: weakref.WeakSet[MessagePump] = weakref.WeakSet()
        for spec in MODE_SPECS:
            self.add_mode(spec.name, spec.screen)

    # -- start and stop ------------------------------------------------------------------------

    def on_mount(self) -> None:
        logging.getLogger().addHandler(self.log_buffer)
        self.last_change_id = self.context.browser.last_change_id()
        self.switch_mode(MODE_SPECS[0].name)
        self.start_node()
        if self.context.change_poll > 0:
            self.set_interval(self.context.change_poll, self.poll_changes)
        if self.context.status_poll > 0:
            self.set_interval(self.context.status_poll, self.poll_status)

    def on_unmount(self) -> None:
        logging.getLogger().removeHandler(self.log_buffer)

    @work(thread=True, exclusive=True, group="node", exit_on_error=False)
    def start_node(self) -> None:
        """Find the live node (or start one in this process), then fill the demo if asked."""
        config = self.context.config
        hosted: Node | None = None
        if self.context.start_node:
            try:
                status, hosted = ensure_node(config)
            except PacsError as exc:
                self.post_message(NodeStatusChanged(None, False, exc.title))
                raise
            self.hosted_node = hosted
            self._node_searched = True
            self.post_message(NodeStatusChanged(status, hosted is not None))
        else:
            self.post_message(NodeStatusChanged(node_status(config), False))
        if self.context.demo:
            from tui_pacs.services.demo import archive_is_empty, fill_demo

            if archive_is_empty(config):
                self.call_from_thread(
                    self.notify, "Filling the archive with demo studies…", title="Demo"
                )
                ingestor = hosted.ingestor if hosted is not None else None
                summary = fill_demo(
                    config,
                    today=self.context.today(),
                    now=self.context.now(),
                    ingestor=ingestor,
                    worklist=True,
                )
                self.call_from_thread(
                    self.notify,
                    f"{summary.studies} studies of {summary.patients} patients "
                    f"({summary.instances} images) and {summary.orders} orders of today added.",
                    title="Demo archive",
                )
            else:
                log.info("demo: the archive is not empty; nothing added")

    def stop_node(self) -> None:
        """Stop the node this console started, if any (blocks until its work is flushed)."""
        node, self.hosted_node = self.hosted_node, None
        if node is not None:
            node.stop()

    async def action_quit(self) -> None:
        """Quit; when this console hosts the node, ask first (modalities lose their target)."""
        node = self.hosted_node
        if node is None:
            self.exit()
            return

        async def answer(confirmed: bool | None) -> None:
            if confirmed:
                self.notify("Stopping the node…")
                await asyncio.to_thread(self.stop_node)
                self.exit()

        config = self.context.config
        await self.push_screen(
            ConfirmDialog(
                "Quit tui-pacs?",
                f"The node {config.ae_title} runs inside this console (port {node.port}). "
                "Quitting stops it: modalities cannot send here until a node runs again.",
                "Quit",
            ),
            answer,
        )

    # -- pollers -------------------------------------------------------------------------------

    def follow(self, screen: MessagePump) -> None:
        """Send ``screen`` the node status and change feed messages from now on."""
        self._followers.add(screen)

    def _broadcast(self, make: Callable[[], ChangesArrived | NodeStatusChanged]) -> None:
        for follower in list(self._followers):
            if follower.is_running:
                follower.post_message(make())

    @work(thread=True, exclusive=True, group="changes", exit_on_error=False)
    def poll_changes(self) -> None:
        """Read the change feed after the last id seen; tell the screens what changed."""
        events = self.context.browser.changes_since(self.last_change_id)
        if events:
            self.last_change_id = events[-1].id
            self.post_message(ChangesArrived(tuple(events)))

    @work(thread=True, exclusive=True, group="status", exit_on_error=False)
    def poll_status(self) -> None:
        """Read the node heartbeat; when no node is alive any more, start one here.

        A console that found another node at start-up relies on it; if that node stops or
        dies, this console takes over as it would have at start-up, so modalities keep a
        target while a console is open.
        """
        config = self.context.config
        own = self.hosted_node
        status = node_status(config, prefer=own.node_id if own else None)
        if status is None and own is None and self.context.start_node and self._node_searched:
            log.warning("no node is alive any more; starting one in this console")
            try:
                status, own = ensure_node(config)
            except PacsError as exc:
                self.post_message(NodeStatusChanged(None, False, exc.title))
                return
            self.hosted_node = own
        hosted = own is not None and status is not None and status.node_id == own.node_id
        self.post_message(NodeStatusChanged(status, hosted))

    def on_changes_arrived(self, message: ChangesArrived) -> None:
        events = message.events
        self._broadcast(lambda: ChangesArrived(events))

    def on_node_status_changed(self, message: NodeStatusChanged) -> None:
        self.last_status = message
        status, hosted, problem = message.status, message.hosted, message.problem
        self._broadcast(lambda: NodeStatusChanged(status, hosted, problem))

    # -- errors --------------------------------------------------------------------------------

    def show_error(self, error: BaseException) -> None:
        """Show an error in the error dialog (anything not a PacsError is logged in full)."""
        if isinstance(error, PacsError):
            log.warning("%s: %s", error.title, error.message)
            shown = error
        else:
            log.error("unexpected error", exc_info=error)
            shown = PacsError(f"{type(error).__name__}: {error}", "Unexpected error")
        self.push_screen(ErrorDialog(shown))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.show_error(event.worker.error)

    # -- help, log, palette --------------------------------------------------------------------

    def action_help(self) -> None:
        """List every key."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(binding_rows(self.screen)))

    def action_show_log(self) -> None:
        """Show what the console and its node logged."""
        if not isinstance(self.screen, LogScreen):
            self.push_screen(LogScreen())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every action with a key, then Textual's own commands."""
        for keys, description, where in binding_rows(screen):
            action = _action_of(self, screen, description, where)
            if action is not None:
                node, name = action
                yield SystemCommand(
                    description,
                    f"{where} · key {keys}",
                    partial(self.call_later, self.run_action, name, node),
                )
        yield from super().get_system_commands(screen)


def _action_of(
    app: App[None], screen: Screen[object], description: str, where: str
) -> tuple[App[None] | Screen[object] | Widget, str] | None:
    nodes: list[App[None] | Screen[object] | Widget] = [app] if where == "Everywhere" else [screen]
    if where != "Everywhere":
        nodes += [w for w in help_widgets(screen) if getattr(w, "HELP_WHERE", "") == where]
    for node in nodes:
        for item in node.BINDINGS:
            if isinstance(item, Binding) and item.description == description:
                return node, item.action
    return None
