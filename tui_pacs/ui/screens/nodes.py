"""The nodes screen: the remote nodes of the registry, their last echo; echo, add, edit, remove.

Nodes from the config file are listed read-only (in italics, source "config"); the others live in
the database and are edited through the node form. Echo results are recorded in the registry,
so every console (and ``tui-pacs nodes``) sees them.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Label, Static
from textual.worker import get_current_worker

from tui_pacs.model import EchoResult, NodeSource, RemoteNode
from tui_pacs.services import remote
from tui_pacs.services.nodes import CHANGE_KIND as NODE_CHANGE_KIND
from tui_pacs.services.nodes import NodeRegistry, ReadOnlyNodeError, services_text
from tui_pacs.ui.dialogs.confirm import ConfirmDialog
from tui_pacs.ui.dialogs.node_form import NodeFormDialog
from tui_pacs.ui.messages import ChangesArrived
from tui_pacs.ui.screens.base import ConsoleScreen
from tui_pacs.ui.widgets.node_table import NodeTable, echo_detail


class NodesScreen(ConsoleScreen):
    """Remote nodes: echo one or all; add, edit, remove (database nodes)."""

    CSS_PATH = "nodes.tcss"

    BINDINGS = [
        Binding("e", "echo", "Echo"),
        Binding("E", "echo_all", "Echo all"),
        Binding("a", "add_node", "Add node"),
        Binding("m", "edit_node", "Edit node"),
        Binding("d,delete", "remove_node", "Remove node"),
        Binding("ctrl+r", "reload", "Reload nodes", show=False),
    ]

    class NodesShown(Message, bubble=False):
        """The node list on screen was drawn from ``nodes``."""

        def __init__(self, nodes: list[RemoteNode]) -> None:
            super().__init__()
            self.nodes = nodes

    class Echoed(Message, bubble=False):
        """A C-ECHO of one node ended (its result is recorded in the registry)."""

        def __init__(self, result: EchoResult) -> None:
            super().__init__()
            self.result = result

    class Saved(Message, bubble=False):
        """A node was added, edited or removed (``node`` None: removed ``name``)."""

        def __init__(self, action: str, name: str, node: RemoteNode | None) -> None:
            super().__init__()
            self.action = action
            self.name = name
            self.node = node

    def __init__(self) -> None:
        super().__init__()
        self._registry: NodeRegistry | None = None
        self._keep: str | None = None

    @property
    def registry(self) -> NodeRegistry:
        """The node registry of this console's database."""
        if self._registry is None:
            self._registry = NodeRegistry(self.context.config)
        return self._registry

    def compose_body(self) -> ComposeResult:
        yield Label("Remote nodes", id="nodes-title", classes="section-title")
        yield NodeTable(id="nodes")
        yield Static("", id="node-detail")

    def on_mount(self) -> None:
        self.query_one(NodeTable).focus()
        self.load_nodes()

    # -- reading ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="nodes", exit_on_error=False)
    def load_nodes(self) -> None:
        """Read the registry (with the last echo of each node)."""
        nodes = self.registry.nodes()
        if not get_current_worker().is_cancelled:
            self.post_message(self.NodesShown(nodes))

    @on(NodesShown)
    def _nodes_shown(self, message: NodesShown) -> None:
        table = self.query_one(NodeTable)
        table.show_nodes(message.nodes, keep=self._keep)
        self._keep = None
        from_config = sum(1 for n in message.nodes if n.source == NodeSource.CONFIG)
        title = f"Remote nodes · {len(message.nodes)}"
        if from_config:
            title += f" ({from_config} from the config file, read-only)"
        self.query_one("#nodes-title", Label).update(title)
        self._show_detail(table.current)

    def on_changes_arrived(self, message: ChangesArrived) -> None:
        if NODE_CHANGE_KIND in message.kinds:
            self.load_nodes()

    @on(DataTable.RowHighlighted, "#nodes")
    def _node_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(self.query_one(NodeTable).current)

    @on(DataTable.RowSelected, "#nodes")
    def _node_selected(self, event: DataTable.RowSelected) -> None:
        self.action_edit_node()

    def _show_detail(self, node: RemoteNode | None) -> None:
        detail = self.query_one("#node-detail", Static)
        if node is None:
            detail.update("No remote node yet: press a to add one.")
            return
        source = (
            f"config file {self.context.config.source or ''}".rstrip()
            if node.source == NodeSource.CONFIG
            else "database"
        )
        lines = [
            f"{node.name}: {node.ae_title}@{node.host}:{node.port} · retrieve by "
            f"C-{node.retrieve_method.upper()} · from the {source}",
            f"May call us for: {services_text(node.allowed_services) or 'nothing'}",
            echo_detail(node.last_echo, self.context.now()),
        ]
        if node.description:
            lines.insert(1, node.description)
        detail.update("\n".join(lines))

    # -- echo ------------------------------------------------------------------------------

    def action_echo(self) -> None:
        """C-ECHO the selected node."""
        node = self.query_one(NodeTable).current
        if node is None:
            self.notify("No node selected", severity="warning")
            return
        self.echo_nodes([node])

    def action_echo_all(self) -> None:
        """C-ECHO every node."""
        nodes = list(self.query_one(NodeTable).nodes.values())
        if nodes:
            self.echo_nodes(nodes)

    def echo_nodes(self, nodes: list[RemoteNode]) -> None:
        """Echo ``nodes`` one after the other in a thread worker; rows update as results come."""
        self.query_one(NodeTable).set_echoing({n.name for n in nodes})
        self._echo(nodes)

    @work(thread=True, group="echo", exit_on_error=False)
    def _echo(self, nodes: list[RemoteNode]) -> None:
        config = self.context.config
        for node in nodes:
            self.post_message(self.Echoed(remote.echo(config, node)))

    @on(Echoed)
    def _echoed(self, message: Echoed) -> None:
        result = message.result
        table = self.query_one(NodeTable)
        table.show_echo(result)
        if table.current is not None and table.current.name == result.node:
            self._show_detail(table.current)
        if not result.ok:
            self.notify(f"{result.node}: {result.message}", title="Echo failed", severity="error")

    # -- add, edit, remove -----------------------------------------------------------------

    def action_add_node(self) -> None:
        """Add a node to the registry (a form)."""

        def save(node: RemoteNode) -> RemoteNode:
            return self.registry.add(
                node.name,
                node.ae_title,
                node.host,
                node.port,
                description=node.description,
                allowed_services=node.allowed_services,
                retrieve_method=node.retrieve_method,
            )

        self.app.push_screen(
            NodeFormDialog("Add a remote node", save), lambda node: self._saved("added", node)
        )

    def action_edit_node(self) -> None:
        """Edit the selected node (config file nodes open read-only)."""
        current = self.query_one(NodeTable).current
        if current is None:
            self.notify("No node selected", severity="warning")
            return
        name = current.name

        def save(node: RemoteNode) -> RemoteNode:
            return self.registry.edit(
                name,
                new_name=node.name,
                ae_title=node.ae_title,
                host=node.host,
                port=node.port,
                description=node.description,
                allowed_services=node.allowed_services,
                retrieve_method=node.retrieve_method,
            )

        title = (
            f"Node {name} (config file, read-only)"
            if current.source == NodeSource.CONFIG
            else f"Edit node {name}"
        )
        self.app.push_screen(
            NodeFormDialog(title, save, current, self.context.config.source),
            lambda node: self._saved("edited", node),
        )

    def _saved(self, action: str, node: RemoteNode | None) -> None:
        if node is None:
            return
        self._keep = node.name
        self.post_message(self.Saved(action, node.name, node))
        self.notify(f"Node {node.name} {action}")
        self.load_nodes()

    def action_remove_node(self) -> None:
        """Remove the selected node from the registry (asks first)."""
        node = self.query_one(NodeTable).current
        if node is None:
            self.notify("No node selected", severity="warning")
            return
        if node.source == NodeSource.CONFIG:
            where = self.context.config.source or "the config file"
            self.console.show_error(
                ReadOnlyNodeError(f"node {node.name!r} is defined in {where}; remove it there")
            )
            return

        def answer(confirmed: bool | None) -> None:
            if confirmed:
                self.remove_node(node.name)

        self.app.push_screen(
            ConfirmDialog(
                f"Remove node {node.name}?",
                f"{node.ae_title}@{node.host}:{node.port} leaves the registry: it can no longer "
                "be queried, and calls from it follow the rule for unknown callers. "
                "Jobs already queued for it still run.",
                "Remove",
            ),
            answer,
        )

    @work(thread=True, group="node-edit", exit_on_error=False)
    def remove_node(self, name: str) -> None:
        """Remove a database node."""
        self.registry.remove(name)
        self.post_message(self.Saved("removed", name, None))

    @on(Saved)
    def _removed(self, message: Saved) -> None:
        if message.action == "removed":
            self.notify(f"Node {message.name} removed")
            self.load_nodes()

    def action_reload(self) -> None:
        """Read the registry again."""
        self.load_nodes()
