"""The node bar of the remote screen: which node queries go to, its address and last echo."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Label, Select

from tui_pacs.model import RemoteNode
from tui_pacs.ui.widgets.node_table import echo_text


class NodeBar(Horizontal):
    """A select of the registry's nodes; posts :class:`NodeBar.Chosen` when another is chosen."""

    class Chosen(Message, bubble=True):
        """Queries go to ``node`` from now on (None: no node registered)."""

        def __init__(self, node: RemoteNode | None) -> None:
            super().__init__()
            self.node = node

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.nodes: dict[str, RemoteNode] = {}
        self.name_chosen: str | None = None

    def compose(self) -> ComposeResult:
        yield Label("Node", classes="filter-label")
        yield Select[str]([], prompt="choose a node", id="remote-node", compact=True)
        yield Label("", id="node-info")

    @property
    def node(self) -> RemoteNode | None:
        """The chosen node."""
        return self.nodes.get(self.name_chosen or "")

    def show_nodes(self, nodes: list[RemoteNode]) -> None:
        """Offer ``nodes``; the chosen one stays (or the first is chosen)."""
        self.nodes = {node.name: node for node in nodes}
        select = self.query_one("#remote-node", Select)
        with self.prevent(Select.Changed):
            select.set_options([(node.name, node.name) for node in nodes])
            if self.name_chosen not in self.nodes:
                self.name_chosen = nodes[0].name if nodes else None
            if self.name_chosen is not None:
                select.value = self.name_chosen
        self._show_info()

    def open(self) -> None:
        """Focus the select and drop its list down."""
        select = self.query_one("#remote-node", Select)
        select.focus()
        select.action_show_overlay()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        name = event.value if isinstance(event.value, str) else None
        if name == self.name_chosen:
            return
        self.name_chosen = name
        self._show_info()
        self.post_message(self.Chosen(self.node))

    def _show_info(self) -> None:
        info = self.query_one("#node-info", Label)
        node = self.node
        if node is None:
            info.update("no remote node registered: add one on the Nodes screen (4)")
            return
        text = echo_text(node.last_echo)
        text.append(f"  {node.ae_title}@{node.host}:{node.port} · C-{node.retrieve_method.upper()}")
        info.update(text)
