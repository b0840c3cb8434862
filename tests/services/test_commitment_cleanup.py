"""Retention of storage commitment requests: delivered and failed ones older than
``[commitment] keep_days`` are deleted (in batches) when the node starts and then periodically,
pending ones never, 0 keeps everything, and ``tui-pacs commitment list`` shows what is kept."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import peewee as pw
import pytest
from click.testing import CliRunner

from tui_pacs.cli import main
from tui_pacs.config import Config
from tui_pacs.model import CommitmentState
from tui_pacs.services.commitment import CommitmentService
from tui_pacs.store import commitment_queue as queue
from tui_pacs.store.db import open_database
from tui_pacs.store.models import CommitmentRequestRow, utcnow

ITEMS = [("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4")]


@pytest.fixture
def db(config: Config) -> pw.Database:
    return open_database(config.effective_database_url)


def _finished(state: CommitmentState, days_ago: float, tx: str | None = None) -> int:
    """A request delivered (or given up on) ``days_ago`` days ago; returns its id."""
    tx = tx or f"1.2.9.{time.monotonic_ns()}"
    row_id = queue.add(tx, "CT1", ITEMS, "a")
    if state == CommitmentState.DELIVERED:
        assert queue.delivered(row_id, tx, "a", "new-association")
    else:
        assert queue.attempt_failed(row_id, tx, "a", "down", None) == state
    when = utcnow() - timedelta(days=days_ago)
    CommitmentRequestRow.update(finished_at=when, created_at=when).where(
        CommitmentRequestRow.id == row_id
    ).execute()
    return row_id


def _ids() -> set[int]:
    return {r[0] for r in CommitmentRequestRow.select(CommitmentRequestRow.id).tuples()}  # type: ignore[index]


@pytest.fixture
def service(config: Config, db: pw.Database) -> Iterator[CommitmentService]:
    """A reporter (not started) with a 30-day retention and nobody to report to."""
    svc = CommitmentService(replace(config, commitment_keep_days=30), db, lambda ae: None)
    try:
        yield svc
    finally:
        svc.stop()


def test_purge_deletes_only_finished_requests_past_retention(db: pw.Database) -> None:
    """Delivered and failed requests finished before the cut-off go, in batches; recent ones,
    pending ones (even old) and a failed one retried since stay."""
    old = [_finished(CommitmentState.DELIVERED, 40 + n) for n in range(3)]
    old.append(_finished(CommitmentState.FAILED, 31))
    recent = [_finished(CommitmentState.DELIVERED, 1), _finished(CommitmentState.FAILED, 29)]
    retried = _finished(CommitmentState.FAILED, 60)
    queue.retry(retried)
    pending = queue.add("1.2.9.9", "CT1", ITEMS, "")
    CommitmentRequestRow.update(created_at=utcnow() - timedelta(days=90)).where(
        CommitmentRequestRow.id == pending
    ).execute()
    cutoff = utcnow() - timedelta(days=30)
    assert queue.purge_finished(cutoff, batch=2) == len(old)
    assert _ids() == {*recent, retried, pending}
    assert queue.purge_finished(cutoff) == 0


def test_node_start_purges_and_zero_keeps_forever(
    config: Config, db: pw.Database, service: CommitmentService
) -> None:
    """Starting the reporter deletes what is past retention at once; with keep_days = 0
    nothing is ever deleted."""
    forever = CommitmentService(replace(config, commitment_keep_days=0), db, lambda ae: None)
    old = _finished(CommitmentState.DELIVERED, 400)
    young = _finished(CommitmentState.DELIVERED, 2)
    forever.start()
    forever.stop()
    assert _ids() == {old, young}
    service.start()
    assert _ids() == {young}


def test_reporter_purges_periodically(service: CommitmentService) -> None:
    """While the node runs, requests that pass their retention are deleted on the reporter's
    schedule (hourly in production; shortened here)."""
    service.purge_interval = 0.05
    service.poll_interval = 0.05
    service.start()
    old = _finished(CommitmentState.FAILED, 45)
    kept = _finished(CommitmentState.DELIVERED, 3)
    deadline = time.monotonic() + 15
    while old in _ids():
        assert time.monotonic() < deadline, "the reporter did not delete the old request"
        time.sleep(0.05)  # polling the table the reporter thread writes
    assert kept in _ids()


def test_list_command_shows_what_is_kept(
    config: Config, db: pw.Database, service: CommitmentService
) -> None:
    """After a purge, `tui-pacs commitment list --all` lists the kept requests only, and
    `tui-pacs commitment list` (and the bare group) the failed one among them."""
    _finished(CommitmentState.DELIVERED, 90, tx="1.2.9.1")
    _finished(CommitmentState.DELIVERED, 1, tx="1.2.9.2")
    _finished(CommitmentState.FAILED, 1, tx="1.2.9.3")
    assert service.purge() == 1
    cli = CliRunner()
    every = cli.invoke(main, ["commitment", "list", "--all"], obj={"config": config})
    assert every.exit_code == 0, every.output
    lines = [x for x in every.output.splitlines()[1:] if x.strip()]
    assert [x.split()[1] for x in lines] == ["failed", "delivered"]
    for args in (["commitment", "list"], ["commitment"]):
        listed = cli.invoke(main, args, obj={"config": config})
        assert listed.exit_code == 0, listed.output
        rows = [x for x in listed.output.splitlines()[1:] if x.strip()]
        assert len(rows) == 1 and "failed" in rows[0] and "down" in rows[0], listed.output
