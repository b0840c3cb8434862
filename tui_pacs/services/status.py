"""Which node serves this archive: find a live one by its heartbeat, or start one in-process."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tui_pacs.config import Config
from tui_pacs.errors import NetworkError
from tui_pacs.model import NodeStatus
from tui_pacs.services.heartbeat import alive_nodes
from tui_pacs.store.db import thread_connection, use_database

if TYPE_CHECKING:
    # Imported when a node is started: the network stack is not needed to draw the console.
    from tui_pacs.services.node import Node

log = logging.getLogger(__name__)


def node_status(config: Config, prefer: str | None = None) -> NodeStatus | None:
    """The live node sharing this configuration's database, or None.

    Args:
        config: Whose database to look in.
        prefer: A node id to report when that node is alive (the console's own node);
            otherwise the newest live node.
    """
    db = use_database(config.effective_database_url)
    with thread_connection(db):
        nodes = alive_nodes(config)
    for node in nodes:
        if node.node_id == prefer:
            return node
    return nodes[0] if nodes else None


def start_node(config: Config) -> Node:
    """Start a node inside this process (the console's own, while no other node is alive).

    Raises:
        NetworkError: The listening port cannot be bound (another program uses it ...).
    """
    from tui_pacs.services.node import Node

    try:
        node = Node(config)
    except OSError as exc:
        raise NetworkError(
            f"cannot listen on {config.bind_address}:{config.port}: {exc.strerror or exc}. "
            "Another program may use this port; set [node] port in the config file.",
            "Node not started",
        ) from exc
    node.start()
    log.info("started a node in the console: %s on port %d", config.ae_title, node.port)
    return node


def ensure_node(config: Config) -> tuple[NodeStatus | None, Node | None]:
    """Find the live node, or start one in this process when none is alive.

    Returns:
        The live node's status, and the in-process node when this call started one.
    """
    status = node_status(config)
    if status is not None:
        log.info("node %s alive (pid %d, port %d)", status.ae_title, status.pid, status.port)
        return status, None
    node = start_node(config)
    return node_status(config, prefer=node.node_id), node
