"""Run the node: the DICOM listener over the ingestor, until asked to stop."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Collection
from logging.handlers import RotatingFileHandler

from pydicom.dataset import Dataset

from tui_pacs.config import Config
from tui_pacs.net.retrieve_scp import retrieve_contexts, retrieve_handlers
from tui_pacs.net.scp import Listener, ListenerOptions, quiet_pynetdicom_events
from tui_pacs.services.heartbeat import Heartbeat, NodeActivity
from tui_pacs.services.commitment import CommitmentService
from tui_pacs.services.ingest import Ingestor
from tui_pacs.services.jobs import JobRunner, new_node_id
from tui_pacs.services.nodes import NodeRegistry
from tui_pacs.services.query import QueryService
from tui_pacs.services.worklist import WorklistService
from tui_pacs.store.db import use_database
from tui_pacs.store.retrieve import ArchivedInstance, InformationModel, retrieve_instances

log = logging.getLogger(__name__)


def setup_logging(config: Config, to_stderr: bool) -> None:
    """Log to the configured file and, for ``serve``, to stderr too."""
    root = logging.getLogger()
    root.setLevel(config.log_level)
    fmt = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:
        config.log_file.parent.mkdir(parents=True, exist_ok=True)
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
    """

    def __init__(self, config: Config, only_jobs: Collection[int] | None = None) -> None:
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
        )
        self.registry = NodeRegistry(config, self.ingestor.db)
        self.query = QueryService(config, self.ingestor.db)
        # The tech desk: worklist (C-FIND through the query handler), MPPS, storage commitment.
        self.worklist = WorklistService(config, self.ingestor.db)
        self.commitment = CommitmentService(config, self.ingestor.db, self.registry.destination)
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
        self.heartbeat.start()
        self.jobs.recover()
        self.listener.start()
        self.jobs.start()

    def stop(self) -> None:
        """Interrupt running jobs, finish the stores in flight, stop listening, flush the index."""
        log.info("stopping: interrupting jobs, finishing stores in flight")
        self.jobs.stop()
        self.heartbeat.stop()
        self.listener.stop()
        self.ingestor.close()
        log.info("node stopped")


def serve(config: Config, on_ready: Callable[[Node], None] | None = None) -> None:
    """Run a node in the foreground until SIGTERM or SIGINT (Ctrl-C)."""
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    node = Node(config)
    previous = {
        sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        node.start()
        if on_ready:
            on_ready(node)
        while not stop.wait(1.0):
            pass
    finally:
        node.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
