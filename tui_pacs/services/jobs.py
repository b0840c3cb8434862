"""Jobs: queue retrieve and send work for the node, follow it, and the runner that executes it.

The CLI and the console queue jobs (``queue_retrieve``, ``queue_send``); the node's
:class:`JobRunner` threads claim them from the shared database, run the SCU calls and record
progress (at most every half second, plus the final state). A cancel sets a flag the runner
polls; the SCU call then sends a C-CANCEL. When the node stops cleanly, a running retrieve goes
back to the queue; after a crash the next node start settles what the dead node left running.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import peewee as pw
from pydicom.dataset import Dataset

from tui_pacs.config import Config
from tui_pacs.errors import NetworkError, PacsError
from tui_pacs.model import JobInfo, JobKind, JobState, RemoteNode
from tui_pacs.net import qr_scu, scu
from tui_pacs.net import status as st
from tui_pacs.net.scp import StoreCallable
from tui_pacs.services.remote import collect_files
from tui_pacs.store import heartbeat as store_heartbeat
from tui_pacs.store import jobs as store_jobs
from tui_pacs.store.db import thread_connection, use_database
from tui_pacs.store.jobs import CHANGE_KIND, JobError

log = logging.getLogger(__name__)

__all__ = [
    "CHANGE_KIND",
    "JobError",
    "JobRunner",
    "cancel_job",
    "get_job",
    "list_jobs",
    "new_node_id",
    "queue_retrieve",
    "queue_send",
    "retry_job",
    "wait_for_job",
]

#: Kinds that may simply run again after a crash (a retrieve: what arrived counts as duplicates).
IDEMPOTENT_KINDS = frozenset({JobKind.RETRIEVE.value})
#: Seconds between two progress writes of one job.
PROGRESS_INTERVAL = 0.5
#: Failed SOP Instance UIDs kept per job.
MAX_FAILED_UIDS = 1000


#: Runners of this process, woken when this process queues a job (no wait for their next poll).
_LOCAL_RUNNERS: weakref.WeakSet[JobRunner] = weakref.WeakSet()


def _wake_local_runners() -> None:
    for runner in list(_LOCAL_RUNNERS):
        runner.wake()


def new_node_id() -> str:
    """A node process's identity in heartbeat rows and job owners: ``host-pid-random``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _db(config: Config) -> pw.Database:
    return use_database(config.effective_database_url)


def node_params(node: RemoteNode) -> dict[str, Any]:
    """The part of a job's parameters that says which remote node to talk to."""
    return {
        "name": node.name,
        "ae_title": node.ae_title,
        "host": node.host,
        "port": node.port,
        "retrieve_method": node.retrieve_method,
    }


def node_from_params(raw: dict[str, Any]) -> RemoteNode:
    return RemoteNode(
        name=str(raw["name"]),
        ae_title=str(raw["ae_title"]),
        host=str(raw["host"]),
        port=int(raw["port"]),
        retrieve_method=str(raw.get("retrieve_method") or "move"),
    )


# --- the facade the CLI and the console call -------------------------------------------------


def queue_retrieve(
    config: Config,
    node: RemoteNode,
    study_instance_uid: str,
    series_instance_uids: Sequence[str] = (),
    method: str | None = None,
    *,
    label: str = "",
) -> JobInfo:
    """Queue the retrieve of a study (or some of its series) from ``node``.

    Args:
        method: ``"move"`` (C-MOVE to our own AE) or ``"get"`` (C-GET); default: the node's
            ``retrieve_method``.
        label: What is retrieved in words (``the study of DOE, John (CT HEAD)``), for the job's
            description instead of the UIDs (which stay in the job's parameters).
    """
    method = method or node.retrieve_method
    if method not in ("move", "get"):
        raise PacsError(f"retrieve method {method!r}; allowed: move, get", "Retrieve")
    what = f"series {', '.join(series_instance_uids)}" if series_instance_uids else "study"
    what = label or f"{what} of {study_instance_uid}"
    with thread_connection(_db(config)):
        job = store_jobs.enqueue(
            JobKind.RETRIEVE.value,
            {
                "node": node_params(node),
                "method": method,
                "root": "study",
                "study_uid": study_instance_uid,
                "series_uids": list(series_instance_uids),
            },
            node_name=node.name,
            description=f"retrieve {what} from {node.name} (C-{method.upper()})",
        )
    _wake_local_runners()
    return job


def queue_send(
    config: Config,
    node: RemoteNode,
    *,
    paths: Iterable[str | Path] = (),
    study_instance_uids: Sequence[str] = (),
    series_instance_uids: Sequence[str] = (),
    label: str = "",
) -> JobInfo:
    """Queue a C-STORE to ``node`` of files or folders, or of archived studies/series.

    Args:
        label: What is sent in words (``the study of DOE, John (CT HEAD)``), for the job's
            description instead of the UIDs or paths (which stay in the job's parameters).

    Raises:
        FileNotFoundError: A path does not exist.
        PacsError: Nothing to send was named.
    """
    abs_paths = [str(Path(p).expanduser().resolve()) for p in paths]
    collect_files(abs_paths)  # fail now, not in the node, for a typo
    if not abs_paths and not study_instance_uids and not series_instance_uids:
        raise PacsError("name files, folders, studies or series to send", "Send")
    if abs_paths:
        what = abs_paths[0] if len(abs_paths) == 1 else f"{len(abs_paths)} paths"
    elif study_instance_uids:
        what = f"study {', '.join(study_instance_uids)}"
    else:
        what = f"series {', '.join(series_instance_uids)}"
    what = label or what
    with thread_connection(_db(config)):
        job = store_jobs.enqueue(
            JobKind.SEND.value,
            {
                "node": node_params(node),
                "paths": abs_paths,
                "study_uids": list(study_instance_uids),
                "series_uids": list(series_instance_uids),
            },
            node_name=node.name,
            description=f"send {what} to {node.name}",
        )
    _wake_local_runners()
    return job


def get_job(config: Config, job_id: int) -> JobInfo:
    """One job by id (raises JobError when unknown)."""
    with thread_connection(_db(config)):
        return store_jobs.get(job_id)


def list_jobs(
    config: Config, states: Collection[JobState] | None = None, limit: int = 50
) -> list[JobInfo]:
    """Most recent jobs first (a snapshot each; safe to call from any thread)."""
    with thread_connection(_db(config)):
        return store_jobs.list_jobs(states, limit)


def cancel_job(config: Config, job_id: int) -> JobState:
    """Cancel a job (at once if queued; the runner stops a running one within a second)."""
    with thread_connection(_db(config)):
        return store_jobs.request_cancel(job_id)


def retry_job(config: Config, job_id: int) -> JobInfo:
    """Queue a failed or cancelled job again."""
    with thread_connection(_db(config)):
        job = store_jobs.retry(job_id)
    _wake_local_runners()
    return job


def wait_for_job(
    config: Config,
    job_id: int,
    on_update: Callable[[JobInfo], None] | None = None,
    poll_interval: float = 0.25,
    timeout: float | None = None,
) -> JobInfo:
    """Poll a job until it ends; call ``on_update`` whenever it changed. Returns the final state.

    Raises:
        TimeoutError: ``timeout`` seconds passed first.
    """
    _db(config)
    deadline = None if timeout is None else time.monotonic() + timeout
    last_seen = None
    while True:
        info = store_jobs.get(job_id)
        if on_update is not None and info.updated_at != last_seen:
            last_seen = info.updated_at
            on_update(info)
        if info.state.finished:
            return info
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {info.state} after {timeout} s")
        time.sleep(poll_interval)


# --- the runner ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Counts:
    total: int | None = None
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int | None = None
    last_status: int | None = None
    failed_uids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "completed": self.completed,
            "failed": self.failed,
            "warning": self.warning,
            "remaining": self.remaining,
            "failed_uids": self.failed_uids[:MAX_FAILED_UIDS],
        }


@dataclass(slots=True)
class _Run:
    """A job this process is executing."""

    job: JobInfo
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Set when the job was taken from us (recovered by another node): stop, write nothing.
    lost: threading.Event = field(default_factory=threading.Event)


@dataclass(slots=True)
class _Outcome:
    state: JobState
    counts: _Counts
    error: str = ""


class _Reporter:
    """Writes a job's progress at most every ``interval`` seconds."""

    def __init__(self, run: _Run, owner: str, interval: float = PROGRESS_INTERVAL) -> None:
        self.run = run
        self.owner = owner
        self.interval = interval
        self._last = 0.0

    def __call__(self, counts: _Counts, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        values = counts.as_dict()
        if not store_jobs.record_progress(
            self.run.job.id, self.owner, last_status=counts.last_status, **values
        ):
            log.warning("job %d is no longer ours; stopping it", self.run.job.id)
            self.run.lost.set()


class JobRunner:
    """Threads of the node that claim queued jobs and execute them.

    Args:
        config: The node's configuration (our AE title is the C-MOVE destination).
        store: Where instances received by a C-GET go (``Ingestor.store_request``).
        owner: This node's id (see :func:`new_node_id`).
        workers: Jobs run at the same time.
        only_ids: Run only these jobs (an in-process node of a CLI command); ``None``: all.
        poll_interval: Seconds between two looks at the queue when idle.
    """

    def __init__(
        self,
        config: Config,
        store: StoreCallable,
        owner: str,
        *,
        workers: int = 2,
        only_ids: Collection[int] | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.config = config
        self.store = store
        self.owner = owner
        self.poll_interval = poll_interval
        self._only_ids = None if only_ids is None else set(only_ids)
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._running: dict[int, _Run] = {}
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"job-runner-{i + 1}", daemon=True)
            for i in range(workers)
        ]
        self._threads.append(
            threading.Thread(target=self._monitor, name="job-monitor", daemon=True)
        )
        _LOCAL_RUNNERS.add(self)

    @property
    def running_count(self) -> int:
        with self._lock:
            return len(self._running)

    def allow(self, job_id: int) -> None:
        """Let a runner restricted by ``only_ids`` run one more job, and wake it."""
        if self._only_ids is not None:
            self._only_ids.add(job_id)
        self.wake()

    def wake(self) -> None:
        """Look at the queue now (a job was queued in this process)."""
        with self._wake:
            self._wake.notify_all()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; interrupt running jobs (a retrieve goes back to the queue)."""
        self._stop.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.1, deadline - time.monotonic()))

    def recover(self) -> list[tuple[int, JobState]]:
        """Settle jobs that dead nodes left running (see ``store.jobs.recover``)."""

        def dead(owner: str) -> bool:
            return owner != self.owner and store_heartbeat.is_dead(owner)

        settled = store_jobs.recover(dead, IDEMPOTENT_KINDS)
        for job_id, state in settled:
            log.warning("job %d was left running by a stopped node: now %s", job_id, state)
        if settled:
            self.wake()
        return settled

    # -- threads --

    def _work(self) -> None:
        db = store_jobs.Job._meta.database
        while not self._stop.is_set():
            try:
                # One connection for the thread's life, opened again after a database error.
                with db.connection_context():
                    while not self._stop.is_set():
                        job = self._claim()
                        if job is not None:
                            self._execute(job)
                            continue
                        self._idle()
            except Exception:
                log.exception("job runner: database error; retrying")
                self._idle()

    def _idle(self) -> None:
        with self._wake:
            if not self._stop.is_set():
                self._wake.wait(self.poll_interval)

    def _claim(self) -> JobInfo | None:
        only = None if self._only_ids is None else set(self._only_ids)
        return store_jobs.claim_next(self.owner, only_ids=only)

    def _monitor(self) -> None:
        db = store_jobs.Job._meta.database
        while not self._stop.is_set():
            try:
                with db.connection_context():
                    while not self._stop.wait(0.5):
                        self._check_cancels()
            except Exception:
                log.exception("job monitor: database error")
                self._stop.wait(self.poll_interval)

    def _check_cancels(self) -> None:
        with self._lock:
            ids = list(self._running)
        if not ids:
            return
        wanted = store_jobs.cancel_requested(ids)
        with self._lock:
            for job_id in wanted:
                run = self._running.get(job_id)
                if run is not None and not run.cancel.is_set():
                    log.info("job %d: cancel requested", job_id)
                    run.cancel.set()

    # -- execution --

    def _execute(self, job: JobInfo) -> None:
        run = _Run(job)
        with self._lock:
            self._running[job.id] = run
        log.info("job %d started: %s", job.id, job.description)
        try:
            outcome = self._outcome_of(run)
        finally:
            with self._lock:
                self._running.pop(job.id, None)
        if run.lost.is_set():
            return
        if outcome is None:  # interrupted by a clean stop
            if job.kind in IDEMPOTENT_KINDS:
                store_jobs.requeue(job.id, self.owner, "node stopped; will resume")
                log.info("job %d interrupted by the node stopping: queued again", job.id)
                return
            outcome = _Outcome(JobState.FAILED, _Counts(), store_jobs.NODE_STOPPED)
        counts = outcome.counts
        store_jobs.finish(
            job.id,
            self.owner,
            outcome.state,
            error=outcome.error,
            last_status=counts.last_status,
            **counts.as_dict(),
        )
        log.info(
            "job %d %s: %d completed, %d failed, %d warning%s",
            job.id,
            outcome.state,
            counts.completed,
            counts.failed,
            counts.warning,
            f" ({outcome.error})" if outcome.error else "",
        )

    def _outcome_of(self, run: _Run) -> _Outcome | None:
        counts = _Counts()
        try:
            if run.job.kind == JobKind.RETRIEVE:
                return self._retrieve(run, counts)
            if run.job.kind == JobKind.SEND:
                return self._send(run, counts)
            return _Outcome(JobState.FAILED, counts, f"unknown job kind {run.job.kind!r}")
        except NetworkError as exc:
            counts.last_status = exc.status if exc.status is not None else counts.last_status
            return self._interrupted(run, counts) or _Outcome(JobState.FAILED, counts, exc.message)
        except KeyError as exc:
            return _Outcome(JobState.FAILED, counts, f"the job's parameters lack {exc}")
        except (PacsError, FileNotFoundError, ValueError) as exc:
            return _Outcome(JobState.FAILED, counts, str(exc))
        except Exception as exc:
            log.exception("job %d failed unexpectedly", run.job.id)
            return _Outcome(JobState.FAILED, counts, f"unexpected error: {exc}")

    def _should_stop(self, run: _Run) -> Callable[[], bool]:
        return lambda: self._stop.is_set() or run.cancel.is_set() or run.lost.is_set()

    @staticmethod
    def _interrupted(run: _Run, counts: _Counts) -> _Outcome | None:
        """The outcome of a job that stopped early: cancelled, or None when the node stops."""
        if run.cancel.is_set():
            return _Outcome(JobState.CANCELLED, counts, "cancelled by request")
        return None

    def _retrieve(self, run: _Run, counts: _Counts) -> _Outcome | None:
        params = run.job.params
        node = node_from_params(params["node"])  # type: ignore[arg-type]
        method = str(params.get("method") or node.retrieve_method)
        root = cast(qr_scu.QueryRoot, params.get("root") or "study")
        study_uid = str(params["study_uid"])
        series_uids = [str(u) for u in params.get("series_uids") or []]  # type: ignore[attr-defined]
        should_stop = self._should_stop(run)
        report = _Reporter(run, self.owner)
        own = self.config.ae_title
        identifiers = []
        for series_uid in series_uids or [""]:
            ds = Dataset()
            ds.QueryRetrieveLevel = "SERIES" if series_uid else "STUDY"
            ds.StudyInstanceUID = study_uid
            if series_uid:
                ds.SeriesInstanceUID = series_uid
            identifiers.append(ds)
        sop_classes = None
        if method == "get":
            sop_classes = _sop_classes_in_study(own, node, study_uid, should_stop)
        final_failure: int | None = None
        for identifier in identifiers:
            if should_stop():
                break
            responses: Iterator[Any]
            if method == "get":
                responses = qr_scu.get(
                    own,
                    node,
                    identifier,
                    self.store,
                    sop_classes=sop_classes,
                    root=root,
                    should_stop=should_stop,
                )
            else:
                responses = qr_scu.move(
                    own, node, identifier, own, root=root, should_stop=should_stop
                )
            base = _Counts(
                counts.total, counts.completed, counts.failed, counts.warning, None, None
            )
            last = None
            for progress in responses:
                last = progress
                op_total = progress.total
                if progress.done and op_total is None:
                    op_total = progress.completed + progress.failed + progress.warning
                counts.total = None if op_total is None else (base.total or 0) + op_total
                counts.completed = base.completed + progress.completed
                counts.failed = base.failed + progress.failed
                counts.warning = base.warning + progress.warning
                counts.remaining = 0 if progress.done else progress.remaining
                counts.last_status = progress.status
                counts.failed_uids.extend(progress.failed_uids)
                report(counts)
            if last is None or last.status == st.CANCEL:
                break
            if not (last.status == st.SUCCESS or st.is_warning(last.status)):
                final_failure = last.status
                break
        if should_stop():
            return self._interrupted(run, counts)
        if final_failure is not None:
            return _Outcome(
                JobState.FAILED, counts, _retrieve_failure(final_failure, node, own, method, counts)
            )
        if counts.failed:
            return _Outcome(
                JobState.FAILED,
                counts,
                f"{counts.failed} of {counts.total} instance(s) could not be retrieved",
            )
        if not counts.completed and not counts.warning:
            return _Outcome(
                JobState.FAILED, counts, f"{node.name} has nothing matching {study_uid}"
            )
        note = f"{counts.warning} instance(s) stored with a warning" if counts.warning else ""
        return _Outcome(JobState.COMPLETED, counts, note)

    def _send(self, run: _Run, counts: _Counts) -> _Outcome | None:
        params = run.job.params
        node = node_from_params(params["node"])  # type: ignore[arg-type]
        should_stop = self._should_stop(run)
        report = _Reporter(run, self.owner)
        uid_of: dict[str, str] = {}
        paths = list(params.get("paths") or [])  # type: ignore[call-overload]
        if paths:
            files = collect_files(paths)
        else:
            root = self.config.storage_path
            files = []
            for sop_uid, rel in store_jobs.archived_instances(
                list(params.get("study_uids") or []),  # type: ignore[call-overload]
                list(params.get("series_uids") or []),  # type: ignore[call-overload]
            ):
                path = root / rel
                uid_of[str(path)] = sop_uid
                files.append(path)
        if not files:
            return _Outcome(JobState.FAILED, counts, "nothing to send (no such files or instances)")
        counts.total = len(files)
        counts.remaining = len(files)
        last_error = ""
        for progress in scu.send_files(self.config.ae_title, node, files, should_stop):
            counts.completed = progress.completed
            counts.failed = progress.failed
            counts.warning = progress.warning
            counts.remaining = progress.total - progress.completed - progress.failed
            if progress.last_status is not None:
                counts.last_status = progress.last_status
            if progress.last_error:
                name = progress.last_sop_instance_uid
                counts.failed_uids.append(uid_of.get(name, name))
                last_error = progress.last_error
            report(counts)
        if should_stop():
            return self._interrupted(run, counts)
        if counts.failed:
            return _Outcome(
                JobState.FAILED,
                counts,
                f"{counts.failed} of {counts.total} instance(s) not sent; last error: {last_error}",
            )
        counts.remaining = 0
        return _Outcome(JobState.COMPLETED, counts)


def _sop_classes_in_study(
    own: str, node: RemoteNode, study_uid: str, should_stop: Callable[[], bool]
) -> list[str] | None:
    """The study's SOPClassesInStudy from a C-FIND, if the peer returns it (for C-GET contexts)."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    query.SOPClassesInStudy = ""
    try:
        for result in qr_scu.find(own, node, query, should_stop=should_stop):
            value = result.get("SOPClassesInStudy")
            if value:
                values = [value] if isinstance(value, str) else list(value)
                return [str(v) for v in values if v]
    except NetworkError as exc:
        log.info("no SOPClassesInStudy from %s (%s); proposing a broad set", node.ae_title, exc)
    return None


def _retrieve_failure(status: int, node: RemoteNode, own: str, method: str, counts: _Counts) -> str:
    text = f"{node.name} answered the C-{method.upper()} with {st.describe(status)}"
    nothing_moved = not (counts.completed or counts.failed or counts.warning)
    # 0xA801 is Move Destination Unknown; some peers (Orthanc) answer 0xC000 for it instead.
    if method == "move" and (0xA800 <= status <= 0xA8FF or nothing_moved):
        text += (
            f"; check that {node.name} knows {own} as a C-MOVE destination "
            "with this node's host and port"
        )
    return text
