"""The ``commitment_request`` table: storage commitment requests until their report is delivered.

A request is written (and committed, so it survives kill -9) before the N-ACTION success
response goes back. A node process then *owns* it while it checks the instances and sends the
N-EVENT-REPORT; the row records the outcome: delivered, or another attempt later (backoff), or
failed for good after the last attempt. Every change of owner or state is one conditional
``UPDATE ... WHERE id = ? AND state = 'pending' AND owner = ?`` whose row count says whether
this caller won, so two processes never work on (and never report) the same request at once.
Rows owned by a dead process are handed back (:func:`recover`) for the next attempt.
Delivered and failed rows are kept for a while (``[commitment] keep_days``), then deleted
(:func:`purge_finished`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

import peewee as pw

from tui_pacs.errors import PacsError
from tui_pacs.model import CommitmentItem, CommitmentReport, CommitmentState
from tui_pacs.store.jobs import write_transaction
from tui_pacs.store.models import Change, CommitmentRequestRow, NodeHeartbeat, utcnow

#: Change feed kind of commitment rows (uid: the Transaction UID).
CHANGE_KIND = "commitment"
#: Longest error text kept.
MAX_ERROR = 1000
#: Rows deleted per statement by :func:`purge_finished` (short write transactions).
PURGE_BATCH = 500
_PENDING = CommitmentState.PENDING.value

Row = CommitmentRequestRow


class CommitmentError(PacsError):
    """A commitment request cannot be found or cannot make the requested transition."""

    title = "Storage commitment"


def _touch(transaction_uid: str) -> None:
    Change.create(kind=CHANGE_KIND, uid=transaction_uid[:64])


def to_report(row: CommitmentRequestRow) -> CommitmentReport:
    """A frozen snapshot of a row."""
    pairs = [tuple(p) for p in json.loads(row.items or "[]")]
    reasons: list[int] = json.loads(row.results) if row.results else []
    checked = len(reasons) == len(pairs)
    items = tuple(
        CommitmentItem(str(c), str(u), int(reasons[i]) if checked else 0)
        for i, (c, u) in enumerate(pairs)
    )
    return CommitmentReport(
        id=row.id,
        transaction_uid=row.transaction_uid,
        calling_ae_title=row.calling_ae_title,
        items=items,
        checked=checked,
        report_via=row.report_via,
        state=CommitmentState(row.state),
        attempts=row.attempts,
        last_error=row.last_error,
        owner=row.owner,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
    )


def add(
    transaction_uid: str,
    calling_ae_title: str,
    items: Sequence[tuple[str, str]],
    owner: str,
) -> int:
    """Record an accepted request, owned by ``owner`` for its first attempt; returns its id."""
    now = utcnow()
    with write_transaction():
        row = Row.create(
            transaction_uid=transaction_uid[:64],
            calling_ae_title=calling_ae_title[:16],
            items=json.dumps([list(p) for p in items]),
            owner=owner[:128],
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        _touch(transaction_uid)
    return int(row.id)


def get(request_id: int) -> CommitmentReport:
    """One request by id.

    Raises:
        CommitmentError: There is none.
    """
    row = Row.get_or_none(Row.id == request_id)
    if row is None:
        raise CommitmentError(f"no storage commitment request {request_id}")
    return to_report(row)


def find(transaction_uid: str) -> list[CommitmentReport]:
    """Every request with this Transaction UID, oldest first."""
    query = Row.select().where(Row.transaction_uid == transaction_uid).order_by(Row.id)
    return [to_report(r) for r in query]


def list_reports(
    states: Collection[CommitmentState] | None = None, limit: int = 20
) -> list[CommitmentReport]:
    """Most recent requests first, optionally only those in ``states``."""
    query = Row.select()
    if states:
        query = query.where(Row.state.in_([s.value for s in states]))
    return [to_report(r) for r in query.order_by(Row.id.desc()).limit(limit)]


def _mine(request_id: int, owner: str) -> pw.Expression:
    return (Row.id == request_id) & (Row.state == _PENDING) & (Row.owner == owner)


def save_results(request_id: int, owner: str, reasons: Sequence[int]) -> bool:
    """Keep the Failure Reason of each item (0: committed): what the next report says, unless
    a later check commits more; False when the row is no longer ``owner``'s."""
    with write_transaction():
        won = (
            Row.update(results=json.dumps(list(reasons)), updated_at=utcnow())
            .where(_mine(request_id, owner))
            .execute()
        )
    return bool(won)


def claim(request_id: int, owner: str) -> bool:
    """Take a pending request nobody works on; False when another process took it first."""
    with write_transaction():
        won = (
            Row.update(owner=owner[:128], updated_at=utcnow())
            .where(_mine(request_id, ""))
            .execute()
        )
    return bool(won)


def claim_due(owner: str, now: datetime | None = None) -> CommitmentReport | None:
    """Claim the pending request whose next attempt is due first, or None."""
    when = now or utcnow()
    query = (
        Row.select(Row.id)
        .where((Row.state == _PENDING) & (Row.owner == "") & (Row.next_attempt_at <= when))
        .order_by(Row.next_attempt_at, Row.id)
        .limit(8)
    )
    # Read to the end first: on SQLite an open read cursor would pin a snapshot.
    candidates = [r[0] for r in query.tuples()]  # type: ignore[index]
    for request_id in candidates:
        if claim(request_id, owner):
            return get(request_id)
    return None


def next_due() -> datetime | None:
    """When the earliest unowned pending request is due, or None when there is none."""
    value = (
        Row.select(pw.fn.MIN(Row.next_attempt_at))
        .where((Row.state == _PENDING) & (Row.owner == ""))
        .scalar()
    )
    return value if isinstance(value, datetime) else None


def delivered(request_id: int, transaction_uid: str, owner: str, via: str) -> bool:
    """Record that the requester took the report; False when the row was not ours."""
    now = utcnow()
    with write_transaction():
        won = (
            Row.update(
                state=CommitmentState.DELIVERED.value,
                report_via=via[:32],
                attempts=Row.attempts + 1,
                owner="",
                last_error="",
                finished_at=now,
                updated_at=now,
            )
            .where(_mine(request_id, owner))
            .execute()
        )
        if won:
            _touch(transaction_uid)
    return bool(won)


def attempt_failed(
    request_id: int,
    transaction_uid: str,
    owner: str,
    error: str,
    retry_at: datetime | None,
) -> CommitmentState | None:
    """Record an attempt that did not deliver: pending again from ``retry_at`` (on a new
    association), or failed for good when ``retry_at`` is None. None when the row was not ours.
    """
    now = utcnow()
    values: dict[str, object] = {
        "attempts": Row.attempts + 1,
        "last_error": error[:MAX_ERROR],
        "owner": "",
        "report_via": "new-association",
        "updated_at": now,
    }
    if retry_at is None:
        values.update(state=CommitmentState.FAILED.value, finished_at=now)
        state = CommitmentState.FAILED
    else:
        values.update(next_attempt_at=retry_at)
        state = CommitmentState.PENDING
    with write_transaction():
        won = Row.update(values).where(_mine(request_id, owner)).execute()
        if won:
            _touch(transaction_uid)
    return state if won else None


def release(owner: str, keep: Collection[int] = ()) -> int:
    """Hand back the pending requests ``owner`` holds, except ``keep`` (a clean stop)."""
    where = (Row.state == _PENDING) & (Row.owner == owner)
    if keep:
        where &= Row.id.not_in(list(keep))
    with write_transaction():
        return int(Row.update(owner="", updated_at=utcnow()).where(where).execute())


def owners() -> dict[str, datetime]:
    """Processes holding pending requests, with the oldest ``updated_at`` of their rows."""
    query = (
        Row.select(Row.owner, pw.fn.MIN(Row.updated_at))
        .where((Row.state == _PENDING) & (Row.owner != ""))
        .group_by(Row.owner)
    )
    rows: list[tuple[str, datetime]] = list(query.tuples())  # type: ignore[arg-type]
    return dict(rows)


def has_heartbeat(owner: str) -> bool:
    """True when ``owner`` is a node process with a heartbeat row (alive or not)."""
    return NodeHeartbeat.select().where(NodeHeartbeat.node_id == owner).exists()


def recover(is_dead: Callable[[str, datetime], bool]) -> list[int]:
    """Hand back, due now, the pending requests of dead owners; returns their ids."""
    recovered: list[int] = []
    for owner, since in owners().items():
        if not is_dead(owner, since):
            continue
        where = (Row.state == _PENDING) & (Row.owner == owner)
        ids = [r[0] for r in Row.select(Row.id).where(where).tuples()]  # type: ignore[index]
        now = utcnow()
        with write_transaction():
            Row.update(owner="", next_attempt_at=now, updated_at=now).where(
                where & Row.id.in_(ids)
            ).execute()
        recovered.extend(ids)
    return recovered


def due_now(now: datetime | None = None) -> int:
    """Make every unowned pending request due now (a node start tries them at once)."""
    when = now or utcnow()
    with write_transaction():
        return int(
            Row.update(next_attempt_at=when)
            .where((Row.state == _PENDING) & (Row.owner == "") & (Row.next_attempt_at > when))
            .execute()
        )


def retry(request_id: int, reasons: Sequence[int] | None = None) -> CommitmentReport:
    """Queue a failed request's report again, with a fresh count of attempts.

    Args:
        request_id: The request.
        reasons: The Failure Reason of each item after checking them again (0: committed),
            recorded in the same update; None keeps the recorded ones.

    Raises:
        CommitmentError: There is no such request, or it is not failed.
    """
    report = get(request_id)
    if report.state != CommitmentState.FAILED:
        raise CommitmentError(
            f"storage commitment request {request_id} is {report.state}; only failed ones "
            "can be retried"
        )
    now = utcnow()
    values: dict[str, object] = {
        "state": _PENDING,
        "attempts": 0,
        "owner": "",
        "next_attempt_at": now,
        "finished_at": None,
        "updated_at": now,
    }
    if reasons is not None:
        values["results"] = json.dumps(list(reasons))
    with write_transaction():
        Row.update(values).where(
            (Row.id == request_id) & (Row.state == CommitmentState.FAILED.value)
        ).execute()
        _touch(report.transaction_uid)
    return get(request_id)


def purge_finished(before: datetime, batch: int = PURGE_BATCH) -> int:
    """Delete the delivered and failed requests finished before ``before``; returns how many.

    Pending requests are never deleted. Works in batches of ``batch`` rows (each its own short
    write transaction), so a large backlog does not hold the write lock for long.
    """
    where = Row.state.in_([CommitmentState.DELIVERED.value, CommitmentState.FAILED.value]) & (
        Row.finished_at < before
    )
    deleted = 0
    while True:
        ids = [r[0] for r in Row.select(Row.id).where(where).limit(batch).tuples()]  # type: ignore[index]
        if not ids:
            return deleted
        with write_transaction():
            # The state condition again: a failed row retried meanwhile is pending and stays.
            deleted += int(Row.delete().where(where & Row.id.in_(ids)).execute())
        if len(ids) < batch:
            return deleted
