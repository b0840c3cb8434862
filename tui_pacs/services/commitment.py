"""Storage commitment (PS3.4 J.3): take a request, check the archive, report to the requester.

The N-ACTION handler hands each request to :meth:`CommitmentService.request`, which answers at
once; a worker thread then checks every instance (index row, file, size, SHA-256) and sends the
N-EVENT-REPORT on the requester's association if it is still open, else on a new association to
the node the registry knows by the requester's AE title. Each finished transaction is logged and
appended to the change feed (kind ``commitment``, uid the Transaction UID).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import peewee as pw
from pynetdicom.presentation import PresentationContext

from tui_pacs.config import Config
from tui_pacs.model import CommitmentItem, RemoteNode
from tui_pacs.net.commitment_scp import (
    RELEASE_GRACE,
    CommitmentRequest,
    commitment_contexts,
    commitment_handlers,
    deliver,
    event_report,
)
from tui_pacs.net.scp import AuthorizeCallable, allow_all
from tui_pacs.store.commitment import check_instances
from tui_pacs.store.db import thread_connection
from tui_pacs.store.models import Change

log = logging.getLogger(__name__)

CHANGE_KIND = "commitment"
#: Transactions checked at the same time at most (each reads and hashes its files).
MAX_PARALLEL = 2


class CommitmentService:
    """The node's storage commitment SCP.

    Args:
        config: Our AE title and the storage folder.
        db: The index database.
        find_node: The registry node of a calling AE title (where a report on a new association
            goes), or None.
        release_grace: Seconds a requester has to release its association after the N-ACTION
            response if it wants the report on a new association.
    """

    def __init__(
        self,
        config: Config,
        db: pw.Database,
        find_node: Callable[[str], RemoteNode | None],
        release_grace: float = RELEASE_GRACE,
    ) -> None:
        self.config = config
        self.db = db
        self.find_node = find_node
        self.release_grace = release_grace
        self._slots = threading.BoundedSemaphore(MAX_PARALLEL)
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        #: How each transaction was reported, by Transaction UID (most recent last).
        self.outcomes: dict[str, str] = {}

    def check(self, items: tuple[tuple[str, str], ...]) -> list[CommitmentItem]:
        """Which of these ``(class, instance)`` UIDs are durably archived."""
        return check_instances(self.db, self.config.storage_path, items)

    def request(self, request: CommitmentRequest) -> None:
        """Take a request over: it is checked and reported from a worker thread."""
        thread = threading.Thread(
            target=self._run,
            args=(request,),
            name=f"commitment-{request.transaction_uid[-8:]}",
            daemon=True,
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, request: CommitmentRequest) -> None:
        try:
            with self._slots:
                items = self.check(request.items)
            event_type, info = event_report(
                request.transaction_uid, items, retrieve_ae_title=self.config.ae_title
            )
            how = deliver(
                request.association,
                self.config.ae_title,
                self.find_node,
                request.calling_ae_title,
                event_type,
                info,
                grace=self.release_grace,
            )
            failed = sum(1 for i in items if i.failure_reason)
            level = logging.WARNING if how.startswith("undelivered") or failed else logging.INFO
            log.log(
                level,
                "storage commitment %s for %s: %d committed, %d failed; report %s",
                request.transaction_uid,
                request.calling_ae_title,
                len(items) - failed,
                failed,
                how,
            )
            self.outcomes[request.transaction_uid] = how
            with thread_connection(self.db):
                Change.create(kind=CHANGE_KIND, uid=request.transaction_uid[:64])
        except Exception:
            log.exception("storage commitment %s failed", request.transaction_uid)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every transaction taken over has been reported (tests, shutdown)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        with self._lock:
            return not any(t.is_alive() for t in self._threads)

    def handlers(self, authorize: AuthorizeCallable = allow_all) -> list[tuple]:
        """Event bindings of the SCP for the listener."""
        return commitment_handlers(self.request, authorize)

    def contexts(self) -> list[PresentationContext]:
        """Presentation contexts of the SCP for the listener."""
        return commitment_contexts()
