"""Pick a remote node (for a send), and the send flow the archive screen starts with one key.

:func:`send_to_node` opens the picker over any console screen, then queues a ``send`` job for
the chosen node in a thread worker of that screen and posts :class:`SendQueued` to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from tui_pacs.model import JobInfo, RemoteNode
from tui_pacs.services import jobs as job_service
from tui_pacs.services.nodes import NodeRegistry
from tui_pacs.ui.widgets.node_table import echo_text

if TYPE_CHECKING:
    from tui_pacs.ui.screens.base import ConsoleScreen


def node_option(node: RemoteNode) -> Option:
    """One line: name, AE@host:port, last echo."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{node.name:<16} ", style="bold")
    text.append(f"{node.ae_title}@{node.host}:{node.port}  ")
    text.append_text(echo_text(node.last_echo))
    return Option(text, id=node.name)


class NodePickerDialog(ModalScreen[RemoteNode | None]):
    """Lists the registry's nodes; Enter picks one, Escape cancels.

    Args:
        title: What the node is for ("Send study of SMITH to…").
        load: Reads the nodes (called in a thread worker).
    """

    DEFAULT_CSS = """
    NodePickerDialog { align: center middle; }
    NodePickerDialog > Vertical {
        width: 72; max-width: 100%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    NodePickerDialog #picker-title { text-style: bold; width: 1fr; }
    NodePickerDialog #picker-note { color: $text-muted; }
    NodePickerDialog OptionList { height: auto; max-height: 14; margin: 1 0; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    class NodesListed(Message, bubble=False):
        """The picker shows these nodes."""

        def __init__(self, nodes: list[RemoteNode]) -> None:
            super().__init__()
            self.nodes = nodes

    def __init__(self, title: str, load: Callable[[], list[RemoteNode]]) -> None:
        super().__init__()
        self.title_text = title
        self.load = load
        self.nodes: dict[str, RemoteNode] = {}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="picker-title")
            yield OptionList(id="picker-nodes")
            yield Static("Reading the node registry…", id="picker-note")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.run_worker(self.load, thread=True, group="nodes", exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "nodes":
            return
        note = self.query_one("#picker-note", Static)
        if event.state == WorkerState.ERROR:
            note.update(f"Cannot read the node registry: {event.worker.error}")
        elif event.state == WorkerState.SUCCESS:
            nodes: list[RemoteNode] = event.worker.result or []
            self.nodes = {node.name: node for node in nodes}
            options = self.query_one(OptionList)
            options.clear_options()
            options.add_options([node_option(node) for node in nodes])
            if nodes:
                options.highlighted = 0
                note.update("Enter: choose · Escape: cancel")
            else:
                note.update("No remote node is registered: add one on the Nodes screen (4).")
            self.post_message(self.NodesListed(nodes))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        node = self.nodes.get(event.option.id or "")
        if node is not None:
            self.dismiss(node)

    def action_cancel(self) -> None:
        """Close without choosing."""
        self.dismiss(None)


class SendQueued(Message, bubble=False):
    """A send job was queued from a screen."""

    def __init__(self, job: JobInfo) -> None:
        super().__init__()
        self.job = job


def send_to_node(
    screen: ConsoleScreen,
    *,
    what: str,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
) -> None:
    """Ask for a node, then queue a send job of the study or series to it.

    Args:
        screen: The screen that owns the worker and receives :class:`SendQueued`.
        what: The study or series in words, for the picker's title and the notification.
        study_instance_uid: The study to send (when no series is given).
        series_instance_uid: The series to send.
    """
    config = screen.context.config

    def load() -> list[RemoteNode]:
        return NodeRegistry(config).nodes()

    def queue(node: RemoteNode) -> None:
        job = job_service.queue_send(
            config,
            node,
            study_instance_uids=[] if series_instance_uid else [study_instance_uid or ""],
            series_instance_uids=[series_instance_uid] if series_instance_uid else [],
            label=what,
        )
        screen.post_message(SendQueued(job))
        screen.app.call_from_thread(
            screen.notify,
            f"Job {job.id}: sending {what} to {node.name} (see Transfers, key 3)",
            title="Send queued",
        )

    def picked(node: RemoteNode | None) -> None:
        if node is not None:
            screen.run_worker(lambda: queue(node), thread=True, group="send", exit_on_error=False)

    screen.app.push_screen(NodePickerDialog(f"Send {what} to…", load), picked)
