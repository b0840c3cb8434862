"""Node heartbeat rows: each running node refreshes its own; anyone can ask who is alive.

A node is alive when its row was refreshed within ``ALIVE_WITHIN`` seconds and, for a node on
this host, its process still exists (a node killed with -9 a second ago is already dead).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from tui_pacs.model import NodeStatus
from tui_pacs.store.jobs import write_transaction
from tui_pacs.store.models import NodeHeartbeat, utcnow

#: Seconds since its last heartbeat after which a node counts as dead.
ALIVE_WITHIN = 15.0


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _to_status(row: NodeHeartbeat) -> NodeStatus:
    return NodeStatus(
        node_id=row.node_id,
        ae_title=row.ae_title,
        host=row.host,
        pid=row.pid,
        port=row.port,
        started_at=row.started_at,
        seen_at=row.seen_at,
        associations=row.associations,
        last_instance_at=row.last_instance_at,
        jobs_running=row.jobs_running,
    )


def beat(
    node_id: str,
    *,
    ae_title: str,
    port: int,
    associations: int = 0,
    last_instance_at: datetime | None = None,
    jobs_running: int = 0,
) -> None:
    """Write or refresh this process's heartbeat row."""
    now = utcnow()
    values = {
        NodeHeartbeat.seen_at: now,
        NodeHeartbeat.associations: associations,
        NodeHeartbeat.last_instance_at: last_instance_at,
        NodeHeartbeat.jobs_running: jobs_running,
        NodeHeartbeat.port: port,
    }
    with write_transaction():
        updated = NodeHeartbeat.update(values).where(NodeHeartbeat.node_id == node_id).execute()
        if not updated:
            NodeHeartbeat.create(
                node_id=node_id,
                ae_title=ae_title[:16],
                host=socket.gethostname()[:255],
                pid=os.getpid(),
                port=port,
                started_at=now,
                seen_at=now,
                associations=associations,
                last_instance_at=last_instance_at,
                jobs_running=jobs_running,
            )


def remove(node_id: str) -> None:
    """Delete this process's heartbeat row (clean stop)."""
    NodeHeartbeat.delete().where(NodeHeartbeat.node_id == node_id).execute()


def _is_alive(row: NodeHeartbeat, now: datetime, within: float) -> bool:
    if row.seen_at < now - timedelta(seconds=within):
        return False
    return not (row.host == socket.gethostname() and not pid_alive(row.pid))


def alive_nodes(within: float = ALIVE_WITHIN) -> list[NodeStatus]:
    """Nodes seen within ``within`` seconds whose process is still there, newest first."""
    now = utcnow()
    rows = NodeHeartbeat.select().order_by(NodeHeartbeat.seen_at.desc())
    return [_to_status(r) for r in rows if _is_alive(r, now, within)]


def is_dead(node_id: str, within: float = ALIVE_WITHIN) -> bool:
    """True when ``node_id`` has no heartbeat row, a stale one, or a vanished process."""
    row = NodeHeartbeat.get_or_none(NodeHeartbeat.node_id == node_id)
    return row is None or not _is_alive(row, utcnow(), within)


def prune(within: float = ALIVE_WITHIN) -> int:
    """Delete the rows of dead nodes (left by a crash); return how many."""
    now = utcnow()
    dead = [r.node_id for r in NodeHeartbeat.select() if not _is_alive(r, now, within)]
    if dead:
        NodeHeartbeat.delete().where(NodeHeartbeat.node_id.in_(dead)).execute()
    return len(dead)
