"""The node's heartbeat thread, and the question every console and CLI asks: is a node alive?"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tui_pacs.config import Config
from tui_pacs.model import NodeStatus
from tui_pacs.store import heartbeat as store_heartbeat
from tui_pacs.store.db import use_database

log = logging.getLogger(__name__)

#: Seconds between two heartbeat writes (a node is dead after ``ALIVE_WITHIN`` = 15 s).
INTERVAL = 5.0


@dataclass(frozen=True, slots=True)
class NodeActivity:
    """What a heartbeat row reports about its node."""

    port: int
    associations: int
    last_instance_at: datetime | None
    jobs_running: int


def alive_nodes(config: Config) -> list[NodeStatus]:
    """Nodes sharing this configuration's database that are running now (newest first)."""
    use_database(config.effective_database_url)
    return store_heartbeat.alive_nodes()


class Heartbeat:
    """Refreshes the node's heartbeat row every few seconds; removes it on a clean stop.

    Args:
        node_id: This node's id (also the owner of the jobs it runs).
        ae_title: Our AE title, shown to consoles.
        activity: Called before each write for the figures to report.
        on_tick: Called after each write (the node settles jobs of dead nodes there).
        interval: Seconds between writes.
    """

    def __init__(
        self,
        node_id: str,
        ae_title: str,
        activity: Callable[[], NodeActivity],
        on_tick: Callable[[], object] | None = None,
        interval: float = INTERVAL,
    ) -> None:
        self.node_id = node_id
        self.ae_title = ae_title
        self.activity = activity
        self.on_tick = on_tick
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def beat(self) -> None:
        """Write the row now."""
        now = self.activity()
        store_heartbeat.beat(
            self.node_id,
            ae_title=self.ae_title,
            port=now.port,
            associations=now.associations,
            last_instance_at=now.last_instance_at,
            jobs_running=now.jobs_running,
        )

    def start(self) -> None:
        """Write the first row (so the node counts as alive at once), then keep it fresh."""
        store_heartbeat.prune()
        self.beat()
        self._thread.start()

    def _run(self) -> None:
        db = store_heartbeat.NodeHeartbeat._meta.database
        while not self._stop.is_set():
            try:
                with db.connection_context():
                    while not self._stop.wait(self.interval):
                        self.beat()
                        if self.on_tick is not None:
                            self.on_tick()
            except Exception:
                log.exception("heartbeat: database error")

    def stop(self) -> None:
        """Stop refreshing and delete the row."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval + 5)
        try:
            store_heartbeat.remove(self.node_id)
        except Exception:
            log.exception("heartbeat: could not remove the row")
