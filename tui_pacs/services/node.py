"""Run the node: the DICOM listener over the ingestor, until asked to stop."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from logging.handlers import RotatingFileHandler

from tui_pacs.config import Config
from tui_pacs.net.scp import Listener, ListenerOptions
from tui_pacs.services.ingest import Ingestor

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
    """The listener and the store of one node process.

    Args:
        config: The node's configuration.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.ingestor = Ingestor(config)
        options = ListenerOptions(
            ae_title=config.ae_title,
            bind_address=config.bind_address,
            port=config.port,
            allowed_calling_ae_titles=config.allowed_calling_ae_titles,
            max_pdu_size=config.max_pdu_size,
            network_timeout=config.network_timeout,
        )
        try:
            self.listener = Listener(options, self.ingestor.store_request)
        except OSError:
            self.ingestor.close()
            raise

    @property
    def port(self) -> int:
        return self.listener.port

    def start(self) -> None:
        self.listener.start()

    def stop(self) -> None:
        """Finish the stores in flight, stop listening, flush the index."""
        log.info("stopping: finishing stores in flight")
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
