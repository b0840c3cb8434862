"""Run the node: the DICOM listener over the ingestor, until asked to stop."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from logging.handlers import RotatingFileHandler, WatchedFileHandler
from typing import Any

from pydicom.dataset import Dataset

from tui_pacs.config import Config
from tui_pacs.net.retrieve_scp import retrieve_contexts, retrieve_handlers
from tui_pacs.net.scp import Listener, ListenerOptions, quiet_pynetdicom_events
from tui_pacs.services.commitment import CommitmentService
from tui_pacs.services.heartbeat import Heartbeat, NodeActivity
from tui_pacs.services.ingest import Ingestor
from tui_pacs.services.jobs import JobRunner, new_node_id
from tui_pacs.services.nodes import NodeRegistry
from tui_pacs.services.query import QueryService
from tui_pacs.services.worklist import WorklistService
from tui_pacs.store.db import use_database
from tui_pacs.store.retrieve import ArchivedInstance, InformationModel, retrieve_instances

log = logging.getLogger(__name__)


def setup_logging(config: Config, to_stderr: bool, worker: str = "") -> None:
    """Log to the configured file and, for ``serve``, to stderr too.

    Args:
        worker: Name of an extra listener process; it tags its lines and leaves rotating the
            shared file to the first process (it reopens the file once rotated).
    """
    root = logging.getLogger()
    root.setLevel(config.log_level)
    tag = f"[{worker}] " if worker else ""
    fmt = logging.Formatter(f"%(asctime)s %(levelname)-7s {tag}%(name)s: %(message)s")
    try:
        config.log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler: logging.Handler
        if worker:
            file_handler = WatchedFileHandler(config.log_file, encoding="utf-8")
        else:
            file_handler = RotatingFileHandler(
                config.log_file, maxBytes=20_000_000, backupCount=5, encoding="utf-8"
            )
        file_handler.setFormatter(fmt)
        root.addHandler(file_handler)
    except OSError as exc:
        print(f"tui-pacs: cannot open log file {config.log_file}: {exc}", file=sys.stderr)
    if to_stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(fmt)
        root.addHandler(stream)
    # pynetdicom logs every PDU at INFO; keep its warnings only unless debugging.
    if config.log_level != "DEBUG":
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)


class Node:
    """The listener, the store, the job runner and the heartbeat of one node process.

    Args:
        config: The node's configuration.
        only_jobs: Run only these jobs (the in-process node of a CLI command); None: every job.
        listener_only: An extra listener process: no job runner, no heartbeat.
        reuse_port: Share the port with the node's other listener processes (SO_REUSEPORT).
    """

    def __init__(
        self,
        config: Config,
        only_jobs: Collection[int] | None = None,
        *,
        listener_only: bool = False,
        reuse_port: bool = False,
    ) -> None:
        self.config = config
        self.node_id = new_node_id()
        # Before any association exists: they bind pynetdicom's logging handlers when created.
        quiet_pynetdicom_events(config.log_level == "DEBUG")
        self.ingestor = Ingestor(config, use_database(config.effective_database_url))
        options = ListenerOptions(
            ae_title=config.ae_title,
            bind_address=config.bind_address,
            port=config.port,
            allowed_calling_ae_titles=config.allowed_calling_ae_titles,
            max_pdu_size=config.max_pdu_size,
            network_timeout=config.network_timeout,
            reuse_port=reuse_port,
            fast_storage=config.fast_storage,
        )
        self.listener_only = listener_only
        self.registry = NodeRegistry(config, self.ingestor.db)
        self.query = QueryService(config, self.ingestor.db)
        # The tech desk: worklist (C-FIND through the query handler), MPPS, storage commitment.
        self.worklist = WorklistService(config, self.ingestor.db)
        self.commitment = CommitmentService(
            config, self.ingestor.db, self.registry.destination, owner=self.node_id
        )
        db, storage = self.ingestor.db, config.storage_path

        def locate(identifier: Dataset, model: InformationModel) -> list[ArchivedInstance]:
            return retrieve_instances(identifier, model, storage, db)

        try:
            self.listener = Listener(
                options,
                self.ingestor.store_request,
                extra_handlers=[
                    *retrieve_handlers(locate, self.registry.destination, self.registry.authorize),
                    *self.query.handlers(self.registry.authorize, self.worklist.mwl_find),
                    *self.worklist.handlers(self.registry.authorize),
                    *self.commitment.handlers(self.registry.authorize),
                ],
                extra_contexts=[
                    *retrieve_contexts(),
                    *self.query.contexts(),
                    *self.worklist.contexts(),
                    *self.commitment.contexts(),
                ],
                authorize=self.registry.authorize,
            )
        except OSError:
            self.ingestor.close()
            raise
        self.jobs = JobRunner(
            config, self.ingestor.store_request, self.node_id, only_ids=only_jobs
        )
        self.heartbeat = Heartbeat(
            self.node_id, config.ae_title, self._activity, on_tick=self._tick
        )

    @property
    def port(self) -> int:
        return self.listener.port

    def _tick(self) -> None:
        """Housekeeping after each heartbeat: settle jobs of dead nodes, move orders along."""
        self.jobs.recover()
        try:
            self.worklist.settle()
        except Exception:
            log.exception("worklist: cannot settle orders")

    def _activity(self) -> NodeActivity:
        return NodeActivity(
            port=self.port,
            associations=self.listener.active_associations,
            last_instance_at=self.ingestor.last_received,
            jobs_running=self.jobs.running_count,
        )

    def start(self) -> None:
        """Announce the node (heartbeat), settle jobs dead nodes left, listen, run jobs.

        The heartbeat comes first so that whoever sees the port open also sees a live node.
        """
        if self.listener_only:
            self.listener.start()
            return
        self.heartbeat.start()
        self.jobs.recover()
        self.listener.start()
        self.jobs.start()
        # Storage commitment reports a stopped (or killed) node left undelivered.
        self.commitment.start()

    def stop(self) -> None:
        """Interrupt running jobs, finish the stores in flight, stop listening, flush the index."""
        log.info("stopping: interrupting jobs, finishing stores in flight")
        if not self.listener_only:
            self.jobs.stop()
            self.heartbeat.stop()
        self.listener.stop()
        self.commitment.stop()
        self.ingestor.close()
        log.info("node stopped")


def serve(config: Config, on_ready: Callable[[Node], None] | None = None) -> None:
    """Run a node in the foreground until SIGTERM or SIGINT (Ctrl-C).

    With ``listener_processes`` above one, the extra listener processes are started on the
    bound port and are listening before ``on_ready`` is called; they stop with this one.
    (Until they are up, this process alone takes the associations.)
    """
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    extra = config.listener_processes - 1
    node = Node(config, reuse_port=extra > 0)
    previous = {
        sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    workers = ListenerProcesses(replace(config, port=node.port), extra)
    try:
        node.start()
        workers.start(stop)
        if on_ready:
            on_ready(node)
        while not stop.wait(1.0):
            workers.check(stop)
    finally:
        workers.signal_stop()
        node.stop()
        workers.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class ListenerProcesses:
    """The node's extra listener processes: same port (SO_REUSEPORT), own index writer each.

    SQLite's write lock (BEGIN IMMEDIATE, busy timeout) orders their commits; PostgreSQL takes
    them as they come. A process that dies is restarted.
    """

    START_TIMEOUT = 60.0

    def __init__(self, config: Config, count: int) -> None:
        self.config = config
        self.count = count
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[int, Any] = {}

    def _spawn(self, number: int) -> tuple[Any, Any]:
        ready = self._ctx.Event()
        proc = self._ctx.Process(
            target=run_listener_process,
            args=(self.config, f"listener-{number}", ready, os.getpid()),
            name=f"listener-{number}",
        )
        proc.start()
        self._procs[number] = proc
        return proc, ready

    def start(self, stop: threading.Event) -> None:
        """Start every process and wait until each one listens."""
        pending = [self._spawn(n) for n in range(2, self.count + 2)]
        deadline = time.monotonic() + self.START_TIMEOUT
        for proc, ready in pending:
            while not ready.wait(0.2):
                if stop.is_set():
                    return
                if not proc.is_alive() or time.monotonic() > deadline:
                    raise OSError(f"{proc.name} did not start (exit code {proc.exitcode})")
        if self.count:
            log.info("%d extra listener process(es) on port %d", self.count, self.config.port)

    def check(self, stop: threading.Event) -> None:
        """Restart a listener process that died."""
        for number, proc in list(self._procs.items()):
            if proc.is_alive() or stop.is_set():
                continue
            log.error("%s exited with %s; restarting it", proc.name, proc.exitcode)
            self._spawn(number)

    def signal_stop(self) -> None:
        """Ask every process to finish its stores in flight and stop (they drain in parallel)."""
        for proc in self._procs.values():
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the same clean stop as the first process

    def join(self) -> None:
        for proc in self._procs.values():
            proc.join(60)
            if proc.is_alive():
                log.error("%s did not stop; killing it", proc.name)
                proc.kill()
                proc.join(5)


def run_listener_process(config: Config, name: str, ready: Any, parent_pid: int) -> None:
    """Body of an extra listener process: listen until SIGTERM/SIGINT or the parent is gone."""
    setup_logging(config, to_stderr=True, worker=name)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    node = Node(config, listener_only=True, reuse_port=True)
    try:
        node.start()
        ready.set()
        while not stop.wait(1.0):
            if os.getppid() != parent_pid:
                log.warning("the node's first process is gone; stopping")
                break
    finally:
        node.stop()
