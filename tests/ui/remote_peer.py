"""A real remote PACS for the console's remote, transfers, nodes and send tests.

The peer is ``tui-pacs serve`` in its own process (its own archive and SQLite index) holding the
demo archive made with another seed: the same twelve patients, other studies (other UIDs). It
knows the console (AE ``TEST_PACS`` on :data:`CONSOLE_PORT`) as a C-MOVE destination, and the
AE ``LIMITED`` as a caller that may only echo (its C-FIND is refused with 0x0124).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from textual.worker import WorkerFailed

from tests.peers import NodeProcess, free_port
from tests.ui.conftest import TODAY, Console, store_config
from tui_pacs.config import Config
from tui_pacs.model import JobInfo, RemoteNode
from tui_pacs.services.demo import fill_demo
from tui_pacs.services.jobs import wait_for_job
from tui_pacs.store.db import database_proxy

PEER_AE = "REMOTE_PACS"
#: The seed of the peer's demo archive (the console's own demo uses seed 1).
PEER_SEED = 2


@dataclass(frozen=True)
class Peer:
    """The running peer and how the console reaches it."""

    process: NodeProcess
    console_port: int

    @property
    def port(self) -> int:
        return self.process.port

    def node(self, name: str = "remote", method: str = "get") -> RemoteNode:
        """The peer as a node of the console's registry."""
        return RemoteNode(
            name=name,
            ae_title=PEER_AE,
            host="127.0.0.1",
            port=self.port,
            retrieve_method=method,
        )


def _release_models() -> None:
    db = database_proxy.obj
    if db is not None:
        db.close()
    database_proxy.initialize(None)


def start_peer(folder: Path, console_port: int, seed: int | None = PEER_SEED) -> NodeProcess:
    """Fill ``folder`` with a demo archive (unless ``seed`` is None) and serve it."""
    if seed is not None:
        fill_demo(store_config(folder), today=TODAY, seed=seed)
        _release_models()
    extra = f"""
[[nodes]]
name = "console"
ae_title = "TEST_PACS"
host = "127.0.0.1"
port = {console_port}

[[nodes]]
name = "limited"
ae_title = "LIMITED"
host = "127.0.0.1"
port = 1
allowed_services = ["echo"]
"""
    return NodeProcess(folder, ae_title=PEER_AE, extra=extra).start()


@pytest.fixture(scope="session", name="peer")
def peer_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """The remote PACS (demo archive, seed 2), one for the session; tests only read it.

    Test modules import ``peer_fixture`` to make the ``peer`` fixture available.
    """
    console_port = free_port()
    process = start_peer(tmp_path_factory.mktemp("peer"), console_port)
    try:
        yield Peer(process, console_port)
    finally:
        process.stop()


def console_config(config: Config, peer: Peer, *nodes: RemoteNode) -> Config:
    """``config`` listening where the peer moves to, with ``nodes`` (default: the peer) in its
    config file part of the registry."""
    return replace(
        config,
        port=peer.console_port,
        nodes=nodes or (peer.node(),),
    )


async def job_end(config: Config, job: JobInfo, timeout: float = 60) -> JobInfo:
    """Wait (off the event loop) until the node's runner has finished ``job``."""
    return await asyncio.to_thread(wait_for_job, config, job.id, None, 0.1, timeout)


async def settle(console: Console) -> None:
    """``console.settle()``, also when a worker fails meanwhile (its error goes to the dialog).

    Textual's ``wait_for_complete`` re-raises the error of a worker that fails while it waits;
    the worker leaves the manager right after, so the next round settles.
    """
    for _ in range(10):
        try:
            await console.settle()
            return
        except WorkerFailed:
            continue
    raise AssertionError("workers kept failing")
