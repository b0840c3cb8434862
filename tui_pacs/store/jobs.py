"""The job queue: enqueue, atomic claim, progress, finish, cancel, retry and crash recovery.

Every state change is one conditional ``UPDATE ... WHERE id = ? AND state = ?`` whose row count
says whether this caller won: two node processes (SQLite or PostgreSQL) can never both claim,
finish or recover the same job. Each change also appends a ``Change`` row (kind ``job``, uid the
job id) so consoles following the change feed see progress wherever the job runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable
from typing import Any

from tui_pacs.errors import PacsError
from tui_pacs.model import JobInfo, JobState
from tui_pacs.store.db import is_sqlite
from tui_pacs.store.models import Change, Instance, Job, Series, Study, utcnow

#: Change feed kind for job rows.
CHANGE_KIND = "job"
#: A job left running by a dead node is re-queued at most this many times in all.
MAX_ATTEMPTS = 3
NODE_STOPPED = "node stopped during the job"
#: Longest error text kept (the column is TEXT, but a page of traceback helps nobody).
MAX_ERROR = 2000


class JobError(PacsError):
    """A job cannot be found or cannot make the requested transition."""

    title = "Job"


def write_transaction() -> Any:
    """A write transaction; on SQLite it takes the write lock at BEGIN (IMMEDIATE), so it waits
    for other writers under the busy timeout instead of failing to upgrade a read lock."""
    db = Job._meta.database
    if is_sqlite(db.obj if hasattr(db, "obj") else db):
        return db.atomic("IMMEDIATE")
    return db.atomic()


def _touch(job_id: int) -> None:
    Change.create(kind=CHANGE_KIND, uid=str(job_id))


def _update_running(job_id: int, owner: str, values: dict[Any, Any]) -> bool:
    """Write ``values`` to the job if ``owner`` still runs it; False when it no longer does."""
    with write_transaction():
        mine = (
            Job.update(values)
            .where(
                (Job.id == job_id) & (Job.owner == owner) & (Job.state == JobState.RUNNING.value)
            )
            .execute()
        )
        if mine:
            _touch(job_id)
    return bool(mine)


def to_info(row: Job) -> JobInfo:
    """A frozen snapshot of a job row."""
    try:
        params = json.loads(row.params or "{}")
    except ValueError:
        params = {}
    return JobInfo(
        id=row.id,
        kind=row.kind,
        state=JobState(row.state),
        node_name=row.node_name,
        description=row.description,
        params=params,
        total=row.total,
        completed=row.completed,
        failed=row.failed,
        warning=row.warning,
        remaining=row.remaining,
        last_status=row.last_status,
        error=row.error,
        failed_uids=tuple(u for u in (row.failed_uids or "").split("\\") if u),
        cancel_requested=bool(row.cancel_requested),
        attempts=row.attempts,
        owner=row.owner,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
    )


def enqueue(
    kind: str, params: dict[str, Any], node_name: str = "", description: str = ""
) -> JobInfo:
    """Queue a job for the node's runner and return it."""
    with write_transaction():
        row = Job.create(
            kind=kind,
            state=JobState.QUEUED.value,
            params=json.dumps(params, sort_keys=True),
            node_name=node_name[:64],
            description=description[:255],
        )
        _touch(row.id)
    return to_info(row)


def get(job_id: int) -> JobInfo:
    """The job with this id.

    Raises:
        JobError: No such job.
    """
    row = Job.get_or_none(Job.id == job_id)
    if row is None:
        raise JobError(f"no job {job_id}", "Unknown job")
    return to_info(row)


def list_jobs(
    states: Collection[JobState] | None = None, limit: int = 50, kind: str | None = None
) -> list[JobInfo]:
    """Most recent jobs first, optionally only those in ``states``."""
    query = Job.select()
    if states:
        query = query.where(Job.state.in_([s.value for s in states]))
    if kind:
        query = query.where(Job.kind == kind)
    return [to_info(r) for r in query.order_by(Job.id.desc()).limit(limit)]


def claim(job_id: int, owner: str) -> bool:
    """Take a queued job for ``owner``; False when another process took (or cancelled) it first."""
    now = utcnow()
    with write_transaction():
        won = (
            Job.update(
                state=JobState.RUNNING.value,
                owner=owner[:128],
                started_at=now,
                finished_at=None,
                updated_at=now,
            )
            .where((Job.id == job_id) & (Job.state == JobState.QUEUED.value))
            .execute()
        )
        if won:
            _touch(job_id)
    return bool(won)


def claim_next(
    owner: str, kinds: Collection[str] | None = None, only_ids: Collection[int] | None = None
) -> JobInfo | None:
    """Claim the oldest queued job (of ``kinds``, among ``only_ids``), or None if there is none."""
    query = Job.select(Job.id).where(Job.state == JobState.QUEUED.value)
    if kinds:
        query = query.where(Job.kind.in_(list(kinds)))
    if only_ids is not None:
        if not only_ids:
            return None
        query = query.where(Job.id.in_(list(only_ids)))
    # A few candidates, in case other nodes win the first ones. The list is read to the end
    # first: on SQLite an open read cursor would pin a snapshot that the claim cannot upgrade.
    candidates = [row[0] for row in query.order_by(Job.id).limit(8).tuples()]  # type: ignore[index]
    for job_id in candidates:
        if claim(job_id, owner):
            return get(job_id)
    return None


def record_progress(
    job_id: int,
    owner: str,
    *,
    total: int | None,
    completed: int,
    failed: int,
    warning: int,
    remaining: int | None,
    last_status: int | None,
    failed_uids: Iterable[str] = (),
    error: str | None = None,
) -> bool:
    """Store progress of a running job; False when the job is no longer ours (recovered)."""
    values: dict[Any, Any] = {
        Job.total: total,
        Job.completed: completed,
        Job.failed: failed,
        Job.warning: warning,
        Job.remaining: remaining,
        Job.last_status: last_status,
        Job.failed_uids: "\\".join(failed_uids),
        Job.updated_at: utcnow(),
    }
    if error is not None:
        values[Job.error] = error[:MAX_ERROR]
    return _update_running(job_id, owner, values)


def finish(
    job_id: int,
    owner: str,
    state: JobState,
    *,
    error: str = "",
    last_status: int | None = None,
    **counts: Any,
) -> bool:
    """End a running job in ``state`` (completed, failed or cancelled).

    Args:
        counts: Final ``total``, ``completed``, ``failed``, ``warning``, ``remaining`` and
            ``failed_uids`` (an iterable of UIDs), where known.
    """
    if not state.finished:
        raise ValueError(f"{state} is not a final state")
    now = utcnow()
    values: dict[Any, Any] = {
        Job.state: state.value,
        Job.error: error[:MAX_ERROR],
        Job.last_status: last_status,
        Job.finished_at: now,
        Job.updated_at: now,
    }
    for key, value in counts.items():
        if key == "failed_uids":
            value = "\\".join(value)
        values[getattr(Job, key)] = value
    return _update_running(job_id, owner, values)


def requeue(job_id: int, owner: str, note: str = "") -> bool:
    """Put a job this owner is running back in the queue (the node is stopping cleanly)."""
    values: dict[Any, Any] = {
        Job.state: JobState.QUEUED.value,
        Job.owner: "",
        Job.error: note,
        Job.updated_at: utcnow(),
    }
    return _update_running(job_id, owner, values)


def request_cancel(job_id: int) -> JobState:
    """Cancel a job: at once while queued, by setting ``cancel_requested`` while running.

    Returns:
        The job's state after the request (``cancelled`` or ``running``).

    Raises:
        JobError: No such job, or it has already ended.
    """
    now = utcnow()
    with write_transaction():
        n = (
            Job.update(
                state=JobState.CANCELLED.value,
                cancel_requested=True,
                error="cancelled before it started",
                finished_at=now,
                updated_at=now,
            )
            .where((Job.id == job_id) & (Job.state == JobState.QUEUED.value))
            .execute()
        )
        if n:
            _touch(job_id)
            return JobState.CANCELLED
        n = (
            Job.update(cancel_requested=True, updated_at=now)
            .where((Job.id == job_id) & (Job.state == JobState.RUNNING.value))
            .execute()
        )
        if n:
            _touch(job_id)
            return JobState.RUNNING
    info = get(job_id)
    raise JobError(f"job {job_id} has already ended ({info.state})", "Cannot cancel")


def cancel_requested(job_ids: Collection[int]) -> set[int]:
    """Those of ``job_ids`` whose cancel has been requested."""
    if not job_ids:
        return set()
    query = Job.select(Job.id).where(Job.id.in_(list(job_ids)) & (Job.cancel_requested == True))  # noqa: E712
    return {row[0] for row in query.tuples()}  # type: ignore[index]


def retry(job_id: int) -> JobInfo:
    """Queue a failed or cancelled job again (counts reset, ``attempts`` + 1).

    Raises:
        JobError: No such job, or it is queued, running or completed.
    """
    now = utcnow()
    with write_transaction():
        n = (
            Job.update(
                state=JobState.QUEUED.value,
                attempts=Job.attempts + 1,
                cancel_requested=False,
                owner="",
                error="",
                last_status=None,
                total=None,
                completed=0,
                failed=0,
                warning=0,
                remaining=None,
                failed_uids="",
                started_at=None,
                finished_at=None,
                updated_at=now,
            )
            .where(
                (Job.id == job_id)
                & Job.state.in_([JobState.FAILED.value, JobState.CANCELLED.value])
            )
            .execute()
        )
        if n:
            _touch(job_id)
    if not n:
        info = get(job_id)
        raise JobError(
            f"job {job_id} is {info.state}; only failed or cancelled jobs can be retried",
            "Cannot retry",
        )
    return get(job_id)


def running_owners() -> set[str]:
    """Owners of the jobs now marked running."""
    query = Job.select(Job.owner).where(Job.state == JobState.RUNNING.value).distinct()
    return {row[0] for row in query.tuples()}  # type: ignore[index]


def recover(
    is_dead: Callable[[str], bool], idempotent_kinds: Collection[str]
) -> list[tuple[int, JobState]]:
    """Settle the jobs that dead owners left running.

    An idempotent job (a retrieve: what already arrived counts as duplicates) is re-queued while
    it has been re-queued fewer than ``MAX_ATTEMPTS`` times; any other is marked failed with
    the reason. Safe to run from several nodes at once: each job is settled by one of them.

    Returns:
        ``(job id, new state)`` for every job settled here.
    """
    settled: list[tuple[int, JobState]] = []
    dead = {owner for owner in running_owners() if is_dead(owner)}
    if not dead:
        return settled
    rows = list(
        Job.select(Job.id, Job.kind, Job.owner, Job.attempts).where(
            (Job.state == JobState.RUNNING.value) & Job.owner.in_(list(dead))
        )
    )
    for row in rows:
        now = utcnow()
        where = (
            (Job.id == row.id) & (Job.owner == row.owner) & (Job.state == JobState.RUNNING.value)
        )
        if row.kind in idempotent_kinds and row.attempts < MAX_ATTEMPTS:
            update = Job.update(
                state=JobState.QUEUED.value,
                owner="",
                attempts=Job.attempts + 1,
                error=f"{NODE_STOPPED}; resumed",
                updated_at=now,
            )
            new_state = JobState.QUEUED
        else:
            reason = NODE_STOPPED
            if row.kind in idempotent_kinds:
                reason += f" (gave up after {row.attempts + 1} attempts)"
            update = Job.update(
                state=JobState.FAILED.value, error=reason, finished_at=now, updated_at=now
            )
            new_state = JobState.FAILED
        with write_transaction():
            if update.where(where).execute():
                _touch(row.id)
                settled.append((row.id, new_state))
    return settled


def archived_instances(
    study_uids: Collection[str] = (), series_uids: Collection[str] = ()
) -> list[tuple[str, str]]:
    """``(SOP Instance UID, archive-relative path)`` of the archived instances a send job sends.

    Instances of the studies in ``study_uids`` plus those of the series in ``series_uids``,
    in study, series and instance number order, each once.
    """
    if not study_uids and not series_uids:
        return []
    condition = None
    if study_uids:
        condition = Study.study_instance_uid.in_(list(study_uids))
    if series_uids:
        by_series = Series.series_instance_uid.in_(list(series_uids))
        condition = by_series if condition is None else (condition | by_series)
    query = (
        Instance.select(Instance.sop_instance_uid, Instance.path)
        .join(Series)
        .join(Study)
        .where(condition)
        .order_by(Study.id, Series.series_number, Series.id, Instance.instance_number, Instance.id)
    )
    return list(dict.fromkeys((str(row[0]), str(row[1])) for row in query.tuples()))  # type: ignore[index]
