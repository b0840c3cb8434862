"""The commitment request table's ownership rules: one owner at a time, outcomes recorded only
by the owner, requests of dead node processes handed back (heartbeat, PID, or a stale claim on
another host), and when a process counts as dead."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import peewee as pw
import pytest

from tui_pacs.config import Config
from tui_pacs.model import CommitmentState
from tui_pacs.services.commitment import CommitmentService, owner_dead
from tui_pacs.store import commitment_queue as queue
from tui_pacs.store import heartbeat as store_heartbeat
from tui_pacs.store.db import open_database
from tui_pacs.store.models import NodeHeartbeat, utcnow

ITEMS = [("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4")]


@pytest.fixture
def db(config: Config) -> pw.Database:
    return open_database(config.effective_database_url)


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_one_owner_at_a_time(db: pw.Database) -> None:
    """A request is its first owner's; nobody else can claim it or record its outcome; once
    handed back it is claimed by one process only, and a delivered one never again."""
    row_id = queue.add("1.2.3", "CT1", ITEMS, "a")
    assert not queue.claim(row_id, "b")
    assert queue.attempt_failed(row_id, "1.2.3", "b", "nope", None) is None
    assert not queue.delivered(row_id, "1.2.3", "b", "new-association")
    past = utcnow() - timedelta(seconds=1)
    assert queue.attempt_failed(row_id, "1.2.3", "a", "down", past) == CommitmentState.PENDING
    first = queue.claim_due("b")
    assert first is not None and first.id == row_id and first.attempts == 1
    assert queue.claim_due("c") is None
    assert queue.delivered(row_id, "1.2.3", "b", "new-association")
    report = queue.get(row_id)
    assert (report.state, report.attempts, report.owner) == (CommitmentState.DELIVERED, 2, "")
    assert queue.release("b") == 0 and queue.claim_due("c") is None
    assert queue.recover(lambda owner, since: True) == []


def test_last_attempt_fails_and_retry_rearms(db: pw.Database) -> None:
    """Without a retry time the request is failed with its reason; retry makes it pending and
    due with a fresh attempt count; a pending one cannot be retried."""
    row_id = queue.add("1.2.3", "CT1", ITEMS, "a")
    assert queue.attempt_failed(row_id, "1.2.3", "a", "gone", None) == CommitmentState.FAILED
    failed = queue.get(row_id)
    assert (failed.state, failed.last_error, failed.attempts) == (CommitmentState.FAILED, "gone", 1)
    assert queue.retry(row_id).state == CommitmentState.PENDING
    again = queue.claim_due("b")
    assert again is not None and again.attempts == 0
    with pytest.raises(queue.CommitmentError, match="only failed ones"):
        queue.retry(row_id)


def test_requests_of_dead_owners_are_handed_back(db: pw.Database) -> None:
    """recover() frees only what dead owners hold, due at once; due_now() pulls waiting
    requests forward (a node start)."""
    dead = queue.add("1.2.3", "CT1", ITEMS, "dead")
    alive = queue.add("1.2.4", "CT1", ITEMS, "alive")
    later = queue.add("1.2.5", "CT1", ITEMS, "x")
    queue.attempt_failed(later, "1.2.5", "x", "down", utcnow() + timedelta(hours=1))
    assert queue.recover(lambda owner, since: owner == "dead") == [dead]
    assert queue.get(alive).owner == "alive"
    claimed = queue.claim_due("me")
    assert claimed is not None and claimed.id == dead
    assert queue.claim_due("me") is None
    assert queue.due_now() == 1
    claimed = queue.claim_due("me")
    assert claimed is not None and claimed.id == later


def test_when_an_owner_counts_as_dead(config: Config, db: pw.Database) -> None:
    """Alive: a running service of this process, a node with a fresh heartbeat, a process of
    this host that exists, another host's claim until it is stale. Dead otherwise."""
    now = utcnow()
    host = socket.gethostname()
    service = CommitmentService(config, db, lambda ae: None)
    assert not owner_dead(service.owner, now)
    service.stop()
    assert owner_dead(service.owner, now)

    beating = f"{host}-{os.getppid()}-beat01"  # another node process of this host
    store_heartbeat.beat(beating, ae_title="X", port=1)
    assert not owner_dead(beating, now)
    NodeHeartbeat.update(seen_at=now - timedelta(minutes=5)).where(
        NodeHeartbeat.node_id == beating
    ).execute()
    assert owner_dead(beating, now)

    assert owner_dead(f"{host}-{_dead_pid()}-abc123", now)
    assert not owner_dead(f"{host}-{os.getppid()}-abc123", now)
    assert not owner_dead("elsewhere-42-abc123", now)
    assert owner_dead("elsewhere-42-abc123", now - timedelta(hours=1))
