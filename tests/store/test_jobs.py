"""The job queue and the heartbeat rows: every transition, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import socket
from datetime import timedelta

import pytest

from tui_pacs.model import JobState
from tui_pacs.store import heartbeat
from tui_pacs.store import jobs as q
from tui_pacs.store.db import open_database
from tui_pacs.store.models import Change, Job, NodeHeartbeat, utcnow

IDEMPOTENT = {"retrieve"}


@pytest.fixture
def db(db_url: str):  # type: ignore[no-untyped-def]
    """The fresh test database, bound to the models."""
    database = open_database(db_url)
    yield database
    database.close()


def _job_changes(job_id: int) -> int:
    return Change.select().where((Change.kind == "job") & (Change.uid == str(job_id))).count()


def _run(job_id: int, owner: str = "node-a") -> None:
    assert q.claim(job_id, owner)


def test_enqueue_get_and_change_feed(db) -> None:  # type: ignore[no-untyped-def]
    """A queued job keeps its parameters and announces itself on the change feed."""
    job = q.enqueue("retrieve", {"study_uid": "1.2.3", "series_uids": ["1.2.3.4"]}, "pacs", "d")
    assert job.state == JobState.QUEUED
    again = q.get(job.id)
    assert again.params == {"study_uid": "1.2.3", "series_uids": ["1.2.3.4"]}
    assert (again.node_name, again.description, again.attempts) == ("pacs", "d", 0)
    assert _job_changes(job.id) == 1
    with pytest.raises(q.JobError):
        q.get(job.id + 1000)


def test_claim_is_won_once(db) -> None:  # type: ignore[no-untyped-def]
    """The first claim wins; a second claim, or a claim of a cancelled job, loses."""
    job = q.enqueue("retrieve", {})
    assert q.claim(job.id, "node-a")
    assert not q.claim(job.id, "node-b")
    info = q.get(job.id)
    assert (info.state, info.owner) == (JobState.RUNNING, "node-a")
    assert info.started_at is not None
    other = q.enqueue("send", {})
    assert q.request_cancel(other.id) == JobState.CANCELLED
    assert not q.claim(other.id, "node-a")


def test_claim_next_order_and_filters(db) -> None:  # type: ignore[no-untyped-def]
    """Oldest first, restricted to the kinds and ids asked for."""
    a = q.enqueue("send", {})
    b = q.enqueue("retrieve", {})
    c = q.enqueue("retrieve", {})
    assert q.claim_next("n", only_ids=set()) is None
    assert q.claim_next("n", only_ids={c.id}).id == c.id  # type: ignore[union-attr]
    assert q.claim_next("n", kinds={"retrieve"}).id == b.id  # type: ignore[union-attr]
    assert q.claim_next("n").id == a.id  # type: ignore[union-attr]
    assert q.claim_next("n") is None


def _claimer(url: str, owner: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Child process: claim jobs until none is left; report which."""
    open_database(url, create=False)
    won = []
    while True:
        job = q.claim_next(owner)
        if job is None:
            break
        won.append(job.id)
    out.put((owner, won))


@pytest.mark.slow
def test_concurrent_claims_from_several_processes(db, db_url: str) -> None:  # type: ignore[no-untyped-def]
    """Three processes racing over one queue claim every job exactly once."""
    ids = [q.enqueue("retrieve", {"n": i}).id for i in range(60)]
    db.close()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(db_url, f"node-{i}", out)) for i in range(3)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    claimed = [job_id for _owner, won in results for job_id in won]
    assert sorted(claimed) == ids  # each job once, none lost
    for owner, won in results:
        for job_id in won:
            assert q.get(job_id).owner == owner
    assert sum(1 for _o, won in results if won) >= 1


def test_progress_and_finish_only_by_owner(db) -> None:  # type: ignore[no-untyped-def]
    """Progress and the final state are written by the owner only, and only while running."""
    job = q.enqueue("retrieve", {})
    _run(job.id)
    before = _job_changes(job.id)
    assert q.record_progress(
        job.id,
        "node-a",
        total=10,
        completed=4,
        failed=1,
        warning=0,
        remaining=5,
        last_status=0xFF00,
        failed_uids=["1.2.3"],
    )
    assert not q.record_progress(
        job.id, "node-b", total=10, completed=9, failed=0, warning=0, remaining=1, last_status=0
    )
    info = q.get(job.id)
    assert (info.total, info.completed, info.failed, info.remaining) == (10, 4, 1, 5)
    assert info.failed_uids == ("1.2.3",)
    assert _job_changes(job.id) == before + 1
    assert not q.finish(job.id, "node-b", JobState.COMPLETED)
    assert q.finish(
        job.id,
        "node-a",
        JobState.FAILED,
        error="boom",
        last_status=0xA702,
        completed=9,
        failed=1,
        remaining=0,
        failed_uids=["1.2.3", "1.2.4"],
    )
    info = q.get(job.id)
    assert (info.state, info.error, info.last_status, info.completed) == (
        JobState.FAILED,
        "boom",
        0xA702,
        9,
    )
    assert info.failed_uids == ("1.2.3", "1.2.4")
    assert info.finished_at is not None
    assert not q.finish(job.id, "node-a", JobState.COMPLETED)  # already ended
    with pytest.raises(ValueError):
        q.finish(job.id, "node-a", JobState.RUNNING)


def test_cancel_queued_running_and_finished(db) -> None:  # type: ignore[no-untyped-def]
    """A queued job is cancelled at once; a running one gets the flag; an ended one refuses."""
    queued = q.enqueue("send", {})
    assert q.request_cancel(queued.id) == JobState.CANCELLED
    assert q.get(queued.id).state == JobState.CANCELLED
    running = q.enqueue("retrieve", {})
    _run(running.id)
    assert q.cancel_requested([running.id]) == set()
    assert q.request_cancel(running.id) == JobState.RUNNING
    assert q.cancel_requested([running.id, queued.id]) == {running.id, queued.id}
    assert q.get(running.id).state == JobState.RUNNING
    q.finish(running.id, "node-a", JobState.CANCELLED, error="cancelled by request")
    with pytest.raises(q.JobError, match="already ended"):
        q.request_cancel(running.id)


def test_retry_requeues_failed_and_cancelled_only(db) -> None:  # type: ignore[no-untyped-def]
    """Retry resets the counts, clears the cancel flag and adds an attempt."""
    job = q.enqueue("retrieve", {})
    _run(job.id)
    q.request_cancel(job.id)
    q.finish(job.id, "node-a", JobState.CANCELLED, completed=3, total=9, error="x")
    info = q.retry(job.id)
    assert (info.state, info.attempts, info.completed, info.total, info.error) == (
        JobState.QUEUED,
        1,
        0,
        None,
        "",
    )
    assert not info.cancel_requested and info.owner == ""
    with pytest.raises(q.JobError, match="queued"):
        q.retry(job.id)
    _run(job.id)
    q.finish(job.id, "node-a", JobState.COMPLETED)
    with pytest.raises(q.JobError, match="completed"):
        q.retry(job.id)


def test_requeue_on_clean_stop(db) -> None:  # type: ignore[no-untyped-def]
    """A node stopping cleanly puts its running job back in the queue, attempts unchanged."""
    job = q.enqueue("retrieve", {})
    _run(job.id)
    assert not q.requeue(job.id, "node-b")
    assert q.requeue(job.id, "node-a", "node stopped; will resume")
    info = q.get(job.id)
    assert (info.state, info.owner, info.attempts) == (JobState.QUEUED, "", 0)


def test_recover_jobs_of_dead_owners(db) -> None:  # type: ignore[no-untyped-def]
    """Dead owners' retrieves are re-queued up to 3 times, then failed; other kinds fail at once."""
    retrieve = q.enqueue("retrieve", {})
    send = q.enqueue("send", {})
    exhausted = q.enqueue("retrieve", {})
    mine = q.enqueue("retrieve", {})
    for job in (retrieve, send, exhausted):
        _run(job.id, "dead-node")
    _run(mine.id, "live-node")
    Job.update(attempts=3).where(Job.id == exhausted.id).execute()
    settled = dict(q.recover(lambda owner: owner == "dead-node", IDEMPOTENT))
    assert settled == {
        retrieve.id: JobState.QUEUED,
        send.id: JobState.FAILED,
        exhausted.id: JobState.FAILED,
    }
    r = q.get(retrieve.id)
    assert (r.state, r.attempts, r.owner) == (JobState.QUEUED, 1, "")
    s = q.get(send.id)
    assert s.error == q.NODE_STOPPED and s.finished_at is not None
    e = q.get(exhausted.id)
    assert e.error.startswith(q.NODE_STOPPED) and "attempts" in e.error
    assert q.get(mine.id).state == JobState.RUNNING
    assert q.recover(lambda owner: owner == "dead-node", IDEMPOTENT) == []  # settled once


def test_recovered_job_is_lost_to_its_old_owner(db) -> None:  # type: ignore[no-untyped-def]
    """Once recovered, a job no longer takes progress or a final state from its old owner."""
    job = q.enqueue("retrieve", {})
    _run(job.id, "zombie")
    q.recover(lambda owner: True, IDEMPOTENT)
    _run(job.id, "new-node")
    assert not q.record_progress(
        job.id, "zombie", total=1, completed=1, failed=0, warning=0, remaining=0, last_status=0
    )
    assert not q.finish(job.id, "zombie", JobState.COMPLETED)
    assert q.get(job.id).owner == "new-node"


def test_list_jobs_newest_first(db) -> None:  # type: ignore[no-untyped-def]
    """Listing is newest first, filtered by state."""
    a = q.enqueue("send", {})
    b = q.enqueue("retrieve", {})
    q.request_cancel(a.id)
    assert [j.id for j in q.list_jobs()] == [b.id, a.id]
    assert [j.id for j in q.list_jobs([JobState.CANCELLED])] == [a.id]
    assert [j.id for j in q.list_jobs(limit=1)] == [b.id]


def test_heartbeat_alive_stale_and_dead_process(db) -> None:  # type: ignore[no-untyped-def]
    """A fresh row of a live process is alive; a stale row or a vanished pid is dead."""
    heartbeat.beat("me", ae_title="TUI_PACS", port=104, associations=2, jobs_running=1)
    heartbeat.beat("me", ae_title="TUI_PACS", port=104, associations=3, jobs_running=0)
    alive = heartbeat.alive_nodes()
    assert [(n.node_id, n.associations, n.pid) for n in alive] == [("me", 3, os.getpid())]
    assert not heartbeat.is_dead("me")
    assert heartbeat.is_dead("nobody")
    # A node on this host whose process is gone (kill -9), seen a second ago.
    NodeHeartbeat.create(
        node_id="crashed", ae_title="X", host=socket.gethostname(), pid=2**22 + 12345, port=1
    )
    assert heartbeat.is_dead("crashed")
    # A node on another host is trusted while its row is fresh, dead once stale.
    NodeHeartbeat.create(node_id="far", ae_title="X", host="elsewhere.invalid", pid=1, port=1)
    assert not heartbeat.is_dead("far")
    NodeHeartbeat.update(seen_at=utcnow() - timedelta(seconds=60)).where(
        NodeHeartbeat.node_id == "far"
    ).execute()
    assert heartbeat.is_dead("far")
    assert {n.node_id for n in heartbeat.alive_nodes()} == {"me"}
    assert heartbeat.prune() == 2
    heartbeat.remove("me")
    assert heartbeat.alive_nodes() == []
