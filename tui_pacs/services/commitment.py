"""Storage commitment (PS3.4 J.3): take a request, check the archive, report to the requester.

The N-ACTION handler hands each request to :meth:`CommitmentService.request`, which records it
in the ``commitment_request`` table (committed before the N-ACTION success response goes back,
so neither a stop nor kill -9 loses it) and starts the first attempt in a worker thread: check
every instance (index row, file, size, SHA-256; the verdicts are recorded before the report
goes out), then send the N-EVENT-REPORT on the requester's association if it is still open,
else on a new association to the node the registry knows by the requester's AE title.

A report that cannot be delivered is tried again by the node's reporter thread on a new
association (PS3.4 J.3.3 allows it once the original association is gone), after a delay that
doubles each time (``[commitment] retry_delay`` up to ``max_retry_delay``), until it is
delivered or the last of ``max_attempts`` failed (the request is then *failed*, with the
reason, for ``tui-pacs commitment``). Every attempt, and ``tui-pacs commitment retry``, checks
the instances not committed so far again (an instance often arrives on another association
just after the N-ACTION); committed ones stay committed. When a node starts, it takes over the
requests a dead node process left unreported and tries every pending one at once. A request
marked delivered is never reported again; the only window for a second report is a crash
between the requester's answer and the commit that records it. The reporter also deletes
delivered and failed requests older than ``[commitment] keep_days`` (at start, then hourly).

Each change of a request is appended to the change feed (kind ``commitment``, uid the
Transaction UID).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from pathlib import Path

import peewee as pw
from pynetdicom.presentation import PresentationContext

from tui_pacs.config import Config
from tui_pacs.model import CommitmentItem, CommitmentReport, CommitmentState, RemoteNode
from tui_pacs.net.commitment_scp import (
    RELEASE_GRACE,
    CommitmentRequest,
    commitment_contexts,
    commitment_handlers,
    deliver,
    event_report,
)
from tui_pacs.net.scp import AuthorizeCallable, allow_all
from tui_pacs.services.jobs import new_node_id
from tui_pacs.store import commitment_queue as queue
from tui_pacs.store import heartbeat as store_heartbeat
from tui_pacs.store.commitment import check_instances
from tui_pacs.store.db import thread_connection, use_database
from tui_pacs.store.models import utcnow

log = logging.getLogger(__name__)

CHANGE_KIND = queue.CHANGE_KIND
#: Transactions checked at the same time at most (each reads and hashes its files).
MAX_PARALLEL = 2
#: The reporter looks at the table at least this often (requests other processes hand back).
POLL_INTERVAL = 5.0
#: Seconds between two deletions of requests older than ``[commitment] keep_days``.
PURGE_INTERVAL = 3600.0
#: A request held by a process on another host without a heartbeat (an extra listener
#: process) is taken over after this long without a change.
STALE_CLAIM = timedelta(minutes=10)

#: Owners of the services of this process that have not stopped.
_LIVE_OWNERS: set[str] = set()
#: Services of this process, woken when this process queues a report again.
_LOCAL_SERVICES: weakref.WeakSet[CommitmentService] = weakref.WeakSet()


class _TakenOver(Exception):
    """The request is no longer this process's (another node process took it over)."""


def recheck(db: pw.Database, storage: Path, report: CommitmentReport) -> list[CommitmentItem]:
    """The verdict on each instance of a request: committed stays committed; every other one
    (all of them before the first check) is checked against the archive now."""
    if not report.checked:
        pairs = tuple((i.sop_class_uid, i.sop_instance_uid) for i in report.items)
        return check_instances(db, storage, pairs)
    failed = [n for n, item in enumerate(report.items) if item.failure_reason]
    if not failed:
        return list(report.items)
    items = list(report.items)
    pairs = tuple((items[n].sop_class_uid, items[n].sop_instance_uid) for n in failed)
    for n, fresh in zip(failed, check_instances(db, storage, pairs), strict=True):
        items[n] = fresh
    return items


def owner_dead(owner: str, since: datetime) -> bool:
    """Whether the node process ``owner`` ("host-pid-token") can no longer work on a request.

    Alive: a service of this process, a node with a live heartbeat, a process of this host that
    still exists; on another host without a heartbeat, until ``STALE_CLAIM`` after ``since``.
    """
    if owner in _LIVE_OWNERS:
        return False
    host, _, _token = owner.rpartition("-")
    host, _, pid_text = host.rpartition("-")
    here = host == socket.gethostname()
    if here and pid_text == str(os.getpid()):
        return True  # a stopped service of this very process
    if queue.has_heartbeat(owner):
        return store_heartbeat.is_dead(owner)  # stale, or its process is gone
    if here and pid_text.isdigit():
        return not store_heartbeat.pid_alive(int(pid_text))
    return since < utcnow() - STALE_CLAIM


class CommitmentService:
    """The node's storage commitment SCP and its reporter.

    Args:
        config: Our AE title, the storage folder and the ``[commitment]`` settings.
        db: The index database.
        find_node: The registry node of a calling AE title (where a report on a new association
            goes), or None.
        release_grace: Seconds a requester has to release its association after the N-ACTION
            response if it wants the report on a new association.
        owner: This node process's id (its heartbeat id); a new one when omitted.
        retry_interval: Seconds before the second attempt (then doubling); default
            ``[commitment] retry_delay``.
        max_attempts: Attempts before a report is recorded as failed; default
            ``[commitment] max_attempts``.
        poll_interval: Longest wait of the reporter between two looks at the table.
    """

    def __init__(
        self,
        config: Config,
        db: pw.Database,
        find_node: Callable[[str], RemoteNode | None],
        release_grace: float = RELEASE_GRACE,
        *,
        owner: str | None = None,
        retry_interval: float | None = None,
        max_attempts: int | None = None,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.config = config
        self.db = db
        self.find_node = find_node
        self.release_grace = release_grace
        self.owner = owner or new_node_id()
        self.retry_interval = (
            config.commitment_retry_delay if retry_interval is None else retry_interval
        )
        self.max_retry_delay = config.commitment_max_retry_delay
        self.max_attempts = max(
            1, config.commitment_max_attempts if max_attempts is None else max_attempts
        )
        #: Days delivered and failed requests are kept (0: forever).
        self.keep_days = config.commitment_keep_days
        self.poll_interval = poll_interval
        self.purge_interval = PURGE_INTERVAL
        self._slots = threading.BoundedSemaphore(MAX_PARALLEL)
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        #: Requests this process is working on now (by row id).
        self._busy: set[int] = set()
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._changed = threading.Condition()
        self._reporter: threading.Thread | None = None
        #: How each transaction's last attempt went, by Transaction UID (most recent last).
        self.outcomes: dict[str, str] = {}
        _LIVE_OWNERS.add(self.owner)
        _LOCAL_SERVICES.add(self)

    # -- the SCP side -----------------------------------------------------------------------

    def check(self, items: tuple[tuple[str, str], ...]) -> list[CommitmentItem]:
        """Which of these ``(class, instance)`` UIDs are durably archived."""
        return check_instances(self.db, self.config.storage_path, items)

    def request(self, request: CommitmentRequest) -> None:
        """Record a request (durably, before the N-ACTION response) and start its first attempt.

        Raises:
            Exception: It could not be recorded (the N-ACTION then fails with 0x0110).
        """
        with thread_connection(self.db):
            row_id = queue.add(
                request.transaction_uid, request.calling_ae_title, request.items, self.owner
            )
        thread = threading.Thread(
            target=self._first_attempt,
            args=(row_id, request),
            name=f"commitment-{request.transaction_uid[-8:]}",
            daemon=True,
        )
        with self._lock:
            self._busy.add(row_id)
            self._threads.add(thread)
        thread.start()

    def handlers(self, authorize: AuthorizeCallable = allow_all) -> list[tuple]:
        """Event bindings of the SCP for the listener."""
        return commitment_handlers(self.request, authorize)

    def contexts(self) -> list[PresentationContext]:
        """Presentation contexts of the SCP for the listener."""
        return commitment_contexts()

    # -- attempts ---------------------------------------------------------------------------

    def retry_delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` undelivered attempts."""
        # Capped before doubling further: 2 ** attempts overflows a float past ~1000 attempts.
        delay = float(self.retry_interval)
        for _ in range(max(0, attempts - 1)):
            if delay >= self.max_retry_delay:
                break
            delay *= 2
        return min(delay, self.max_retry_delay)

    def _first_attempt(self, row_id: int, request: CommitmentRequest) -> None:
        try:
            with thread_connection(self.db):
                report = queue.get(row_id)
            self._attempt(report, request.association)
        except Exception:
            log.exception("storage commitment %s failed", request.transaction_uid)
        finally:
            with self._lock:
                self._busy.discard(row_id)
                self._threads.discard(threading.current_thread())

    def _items(self, report: CommitmentReport) -> list[CommitmentItem]:
        """The verdict of each instance, recorded before the report goes out: committed in an
        earlier check stays committed, the others are checked again now.

        Raises:
            _TakenOver: Another node process took the request over meanwhile.
        """
        if report.checked and not report.failed:
            return list(report.items)
        with self._slots:
            items = recheck(self.db, self.config.storage_path, report)
        reasons = [i.failure_reason for i in items]
        if report.checked:
            now_committed = report.failed - sum(1 for r in reasons if r)
            if now_committed == 0:
                return items
            log.info(
                "storage commitment %s: %d more instance(s) committed since the last check",
                report.transaction_uid,
                now_committed,
            )
        with thread_connection(self.db):
            if not queue.save_results(report.id, self.owner, reasons):
                raise _TakenOver(report.transaction_uid)
        return items

    def _attempt(self, report: CommitmentReport, association: object | None) -> None:
        """One attempt at reporting a request this process owns; records how it went."""
        tx = report.transaction_uid
        items: list[CommitmentItem] = []
        try:
            try:
                items = self._items(report)
            except _TakenOver:
                log.warning("storage commitment %s: another node took it over", tx)
                return
            event_type, info = event_report(tx, items, retrieve_ae_title=self.config.ae_title)
            how = deliver(
                association,
                self.config.ae_title,
                self.find_node,
                report.calling_ae_title,
                event_type,
                info,
                grace=self.release_grace,
            )
        except Exception as exc:
            log.exception("storage commitment %s: attempt failed", tx)
            how = f"undelivered: {type(exc).__name__}: {exc}"
        attempts = report.attempts + 1
        with thread_connection(self.db):
            if not how.startswith("undelivered"):
                state: CommitmentState | None = CommitmentState.DELIVERED
                if not queue.delivered(report.id, tx, self.owner, how):
                    log.warning("storage commitment %s: another node took it over", tx)
            else:
                retry_at = None
                if attempts < self.max_attempts:
                    retry_at = utcnow() + timedelta(seconds=self.retry_delay(attempts))
                state = queue.attempt_failed(report.id, tx, self.owner, how, retry_at)
        self.outcomes[tx] = how
        failed = sum(1 for i in items if i.failure_reason)
        if state == CommitmentState.DELIVERED:
            log.log(
                logging.WARNING if failed else logging.INFO,
                "storage commitment %s for %s: %d committed, %d failed; report %s",
                tx,
                report.calling_ae_title,
                len(items) - failed,
                failed,
                how,
            )
        elif state == CommitmentState.FAILED:
            log.error(
                "storage commitment %s for %s: gave up after %d attempt(s): %s",
                tx,
                report.calling_ae_title,
                attempts,
                how,
            )
        else:
            log.warning(
                "storage commitment %s for %s: attempt %d of %d: %s; trying again later",
                tx,
                report.calling_ae_title,
                attempts,
                self.max_attempts,
                how,
            )
        with self._changed:
            self._changed.notify_all()
        self.wake()

    # -- the reporter -----------------------------------------------------------------------

    def purge(self) -> int:
        """Delete the delivered and failed requests older than ``keep_days``; returns how many."""
        if self.keep_days <= 0:
            return 0
        before = utcnow() - timedelta(days=self.keep_days)
        with thread_connection(self.db):
            deleted = queue.purge_finished(before)
        if deleted:
            log.info(
                "storage commitment: deleted %d request(s) finished over %d day(s) ago",
                deleted,
                self.keep_days,
            )
        return deleted

    def start(self) -> None:
        """Take over what dead node processes left unreported, delete requests past their
        retention, then report every pending request (at once, then on its schedule) until
        :meth:`stop`."""
        with thread_connection(self.db):
            recovered = queue.recover(owner_dead)
            queue.due_now()
        try:
            self.purge()
        except Exception:
            log.exception("storage commitment: cannot delete old requests")
        if recovered:
            log.warning(
                "storage commitment: %d request(s) left unreported by a stopped node; "
                "reporting them on new associations",
                len(recovered),
            )
        self._reporter = threading.Thread(
            target=self._run_reporter, name="commitment-reporter", daemon=True
        )
        self._reporter.start()

    def wake(self) -> None:
        """Look at the table now."""
        with self._wake:
            self._wake.notify_all()

    def _run_reporter(self) -> None:
        last_recover = last_purge = time.monotonic()
        while not self._stop.is_set():
            due: datetime | None = None
            report: CommitmentReport | None = None
            if time.monotonic() - last_purge >= self.purge_interval:
                last_purge = time.monotonic()
                try:
                    self.purge()
                except Exception:
                    log.exception("storage commitment: cannot delete old requests")
            try:
                with thread_connection(self.db):
                    if time.monotonic() - last_recover >= self.poll_interval:
                        last_recover = time.monotonic()
                        queue.recover(owner_dead)
                    report = queue.claim_due(self.owner)
                    if report is None:
                        due = queue.next_due()
            except Exception:
                log.exception("storage commitment reporter: database error")
            if report is not None:
                with self._lock:
                    self._busy.add(report.id)
                try:
                    self._attempt(report, None)
                except Exception:
                    # The outcome could not be recorded; the request stays ours until stop()
                    # hands it back (or, after a crash, the next node takes it over).
                    log.exception("storage commitment %s: cannot record", report.transaction_uid)
                finally:
                    with self._lock:
                        self._busy.discard(report.id)
                continue
            wait = self.poll_interval
            if due is not None:
                wait = min(wait, max(0.01, (due - utcnow()).total_seconds()))
            with self._wake:
                if not self._stop.is_set():
                    self._wake.wait(wait)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the reporter, let attempts in flight finish (up to ``timeout``), and hand back
        the requests this process holds but no longer works on."""
        self._stop.set()
        self.wake()
        deadline = time.monotonic() + timeout
        if self._reporter is not None:
            self._reporter.join(max(0.1, deadline - time.monotonic()))
        self.wait_idle(max(0.1, deadline - time.monotonic()))
        with self._lock:
            busy = set(self._busy)
        try:
            with thread_connection(self.db):
                queue.release(self.owner, keep=busy)
        except Exception:
            log.exception("storage commitment: cannot hand back pending requests")
        if not busy:
            _LIVE_OWNERS.discard(self.owner)

    # -- waiting (tests, shutdown) ----------------------------------------------------------

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every first attempt started here has ended."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return not any(t.is_alive() for t in self._threads)

    def wait_for(
        self,
        transaction_uid: str,
        states: Collection[CommitmentState],
        timeout: float = 30.0,
    ) -> CommitmentReport | None:
        """The latest request with this Transaction UID once it is in one of ``states``;
        None after ``timeout`` seconds (also sees changes made by other processes)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                with thread_connection(self.db):
                    found = queue.find(transaction_uid)
                if found and found[-1].state in states:
                    return found[-1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(min(remaining, 0.2))


# -- the CLI's calls ----------------------------------------------------------------------------


def list_reports(
    config: Config, states: Collection[CommitmentState] | None = None, limit: int = 20
) -> list[CommitmentReport]:
    """Most recent storage commitment requests first (optionally only in ``states``)."""
    with thread_connection(use_database(config.effective_database_url)):
        return queue.list_reports(states, limit)


def get_report(config: Config, key: str) -> CommitmentReport:
    """One request by id, or the latest with this Transaction UID.

    Raises:
        CommitmentError: There is none.
    """
    with thread_connection(use_database(config.effective_database_url)):
        if key.isdigit():
            return queue.get(int(key))
        found = queue.find(key)
    if not found:
        raise queue.CommitmentError(f"no storage commitment request {key}")
    return found[-1]


def retry_report(config: Config, request_id: int) -> CommitmentReport:
    """Try a failed request's report again (the running node sends it within seconds), after
    checking its instances not committed so far against the archive again.

    Raises:
        CommitmentError: There is no such request, or it is not failed.
    """
    db = use_database(config.effective_database_url)
    with thread_connection(db):
        given_up = queue.get(request_id)
    reasons: list[int] | None = None
    if given_up.state == CommitmentState.FAILED and (given_up.failed or not given_up.checked):
        reasons = [i.failure_reason for i in recheck(db, config.storage_path, given_up)]
    with thread_connection(db):
        report = queue.retry(request_id, reasons)
    for service in list(_LOCAL_SERVICES):
        service.wake()
    return report
