"""The job runner without a network: coalesced progress, bad jobs, restriction to its own jobs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tui_pacs.config import Config
from tui_pacs.model import JobInfo, JobState
from tui_pacs.services import jobs as service
from tui_pacs.services.jobs import JobRunner, _Counts, _Reporter, _Run, wait_for_job
from tui_pacs.store import jobs as q
from tui_pacs.store.db import open_database
from tui_pacs.store.models import Change


@pytest.fixture
def runner(config: Config) -> Iterator[JobRunner]:
    """A runner over the test database that runs only the jobs a test allows."""
    open_database(config.effective_database_url)
    run = JobRunner(config, lambda request: None, "test-node", only_ids=set(), poll_interval=0.1)
    run.start()
    yield run
    run.stop()


def _changes(job_id: int) -> int:
    return Change.select().where((Change.kind == "job") & (Change.uid == str(job_id))).count()


def test_progress_writes_are_coalesced(config: Config) -> None:
    """Hundreds of progress updates within half a second make one write, plus a forced one."""
    open_database(config.effective_database_url)
    job = q.enqueue("retrieve", {})
    assert q.claim(job.id, "me")
    before = _changes(job.id)
    reporter = _Reporter(_Run(job), "me", interval=60)
    counts = _Counts(total=500)
    for i in range(500):
        counts.completed = i + 1
        reporter(counts)
    assert _changes(job.id) == before + 1
    assert q.get(job.id).completed == 1
    reporter(counts, force=True)
    assert _changes(job.id) == before + 2
    assert q.get(job.id).completed == 500


def _run_to_end(config: Config, runner: JobRunner, job: JobInfo) -> JobInfo:
    runner.allow(job.id)
    return wait_for_job(config, job.id, timeout=30, poll_interval=0.05)


def test_unknown_kind_and_bad_parameters_fail_with_a_reason(
    config: Config, runner: JobRunner
) -> None:
    """A job the runner cannot understand ends failed, saying why; the runner goes on."""
    odd = _run_to_end(config, runner, q.enqueue("defragment", {}))
    assert odd.state == JobState.FAILED and "unknown job kind" in odd.error
    broken = _run_to_end(config, runner, q.enqueue("retrieve", {"study_uid": "1.2.3"}))
    assert broken.state == JobState.FAILED and "node" in broken.error
    assert broken.owner == "test-node" and broken.finished_at is not None


def test_runner_leaves_jobs_it_was_not_given(config: Config, runner: JobRunner) -> None:
    """An in-process runner restricted to its command's job does not take other queued jobs."""
    other = q.enqueue("defragment", {})
    mine = _run_to_end(config, runner, q.enqueue("defragment", {}))
    assert mine.state == JobState.FAILED
    assert q.get(other.id).state == JobState.QUEUED


def test_send_of_nothing_fails(config: Config, runner: JobRunner) -> None:
    """A send job naming a study we do not hold fails with 'nothing to send'."""
    from tui_pacs.model import RemoteNode

    peer = RemoteNode("peer", "PEER", "127.0.0.1", 104)
    job = service.queue_send(config, peer, study_instance_uids=["1.2.3.4"])
    done = _run_to_end(config, runner, job)
    assert done.state == JobState.FAILED and "nothing to send" in done.error
