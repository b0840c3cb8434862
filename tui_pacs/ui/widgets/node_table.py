"""The remote node list: name, last echo, AE title, address, allowed services, retrieve method."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import datetime

from rich.text import Text

from tui_pacs.model import DimseService, EchoResult, NodeSource, RemoteNode
from tui_pacs.ui.widgets.row_table import RowTable
from tui_pacs.ui.widgets.status_bar import describe_age

#: (column key, header, width)
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("name", "Name", 14),
    ("echo", "Last echo", 14),
    ("ae_title", "AE title", 16),
    ("address", "Address", 18),
    ("services", "Services", 9),
    ("method", "Retrieve", 8),
    ("source", "Source", 6),
)
#: One letter per service (E F M G S; W for the worklist, P for MPPS, C for commitment).
SERVICE_LETTERS = {
    DimseService.ECHO: "E",
    DimseService.FIND: "F",
    DimseService.MOVE: "M",
    DimseService.GET: "G",
    DimseService.STORE: "S",
    "mwl": "W",
    "mpps": "P",
    "commit": "C",
}


def services_letters(node: RemoteNode) -> str:
    """``EFMGSWPC`` with a dot for each service the node may not use against us."""
    return "".join(
        SERVICE_LETTERS.get(service, service.value[:1].upper())
        if service in node.allowed_services
        else "·"
        for service in DimseService
    )


def echo_text(echo: EchoResult | None, pending: bool = False) -> Text:
    """``✓ 3.2 ms`` in green, ``✗ refused`` in red, ``…`` while an echo runs, ``never`` if none."""
    if pending:
        return Text("… echoing", style="yellow")
    if echo is None:
        return Text("never", style="dim")
    if echo.ok:
        latency = f"{echo.latency_ms:.1f} ms" if echo.latency_ms is not None else "ok"
        return Text(f"✓ {latency}", style="green")
    return Text(f"✗ {echo.message}", style="bold red", overflow="ellipsis", no_wrap=True)


def echo_detail(echo: EchoResult | None, now: datetime) -> str:
    """The last echo in a sentence (for the detail line)."""
    if echo is None:
        return "never echoed"
    at = echo.at.replace(tzinfo=None) if echo.at.tzinfo else echo.at
    when = describe_age(at, now)
    if echo.ok:
        latency = f" in {echo.latency_ms:.1f} ms" if echo.latency_ms is not None else ""
        return f"echo OK{latency} at {when}"
    return f"echo failed at {when}: {echo.message}"


class NodeTable(RowTable):
    """Remote nodes; the row key is the node name."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.nodes: dict[str, RemoteNode] = {}
        self.echoing: set[str] = set()

    def on_mount(self) -> None:
        for key, header, width in COLUMNS:
            self.add_column(header, key=key, width=width)

    @property
    def current(self) -> RemoteNode | None:
        """The node under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.nodes.get(key) if key is not None else None

    def _cells(self, node: RemoteNode) -> list[str | Text]:
        read_only = node.source == NodeSource.CONFIG
        return [
            Text(node.name, overflow="ellipsis", no_wrap=True, style="italic" if read_only else ""),
            echo_text(node.last_echo, node.name in self.echoing),
            node.ae_title,
            Text(f"{node.host}:{node.port}", overflow="ellipsis", no_wrap=True),
            services_letters(node),
            "C-" + node.retrieve_method.upper(),
            Text("config", style="dim") if read_only else "db",
        ]

    def show_nodes(self, nodes: list[RemoteNode], keep: str | None = None) -> None:
        """Replace the rows; the cursor stays on ``keep`` (or the node it was on)."""
        keep = keep or (self.current.name if self.current is not None else None)
        row = self.cursor_row
        self.nodes = {node.name: node for node in nodes}
        self.clear()
        for node in nodes:
            self.add_row(*self._cells(node), key=node.name)
        if not nodes:
            return
        target = min(row, len(nodes) - 1)
        if keep is not None:
            with contextlib.suppress(Exception):
                target = self.get_row_index(keep)
        self.move_cursor(row=target, animate=False)

    def set_echoing(self, names: set[str]) -> None:
        """Mark the nodes an echo is running for."""
        self.echoing = set(names)
        for name in names:
            if name in self.nodes:
                self.update_cell(name, "echo", echo_text(None, pending=True))

    def show_echo(self, echo: EchoResult) -> None:
        """Show a new echo result in its node's row."""
        self.echoing.discard(echo.node)
        node = self.nodes.get(echo.node)
        if node is None:
            return
        self.nodes[echo.node] = replace(node, last_echo=echo)
        self.update_cell(echo.node, "echo", echo_text(echo))
