"""Re-checking on retry: the instances of a request that were not committed are checked against
the archive again by every delivery attempt and by ``tui-pacs commitment retry`` (committed ones
stay committed, even if their file went since), and the new verdicts are recorded before the
report goes out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage

from tests.peers import free_port
from tests.store.synthetic import make_dataset, new_uid, to_bytes
from tui_pacs.cli import main
from tui_pacs.config import Config
from tui_pacs.model import CommitmentReport, CommitmentState, RemoteNode
from tui_pacs.services.commitment import CommitmentService, recheck, retry_report
from tui_pacs.services.ingest import Ingestor
from tui_pacs.store import commitment_queue as queue
from tui_pacs.store.commitment import CLASS_INSTANCE_CONFLICT as CONFLICT
from tui_pacs.store.commitment import NO_SUCH_OBJECT_INSTANCE as NO_SUCH
from tui_pacs.store.models import Instance


@pytest.fixture
def ingestor(config: Config) -> Iterator[Ingestor]:
    ing = Ingestor(config)
    try:
        yield ing
    finally:
        ing.close()


def _datasets(n: int) -> list[Dataset]:
    study, series = new_uid(), new_uid()
    return [
        make_dataset(study_uid=study, series_uid=series, instance_number=i + 1) for i in range(n)
    ]


def _pair(ds: Dataset) -> tuple[str, str]:
    return str(ds.SOPClassUID), str(ds.SOPInstanceUID)


def _reasons(report: CommitmentReport) -> list[int]:
    assert report.checked
    return [i.failure_reason for i in report.items]


def test_recheck_commits_late_instances_only(config: Config, ingestor: Ingestor) -> None:
    """Before the first check every instance is checked; afterwards only the failed ones: an
    instance stored since is committed, a class conflict stays failed, and a committed one
    whose file went since stays committed (it was reported so)."""
    early, late = _datasets(2)
    ingestor.store_bytes(to_bytes(early))
    conflict = (str(MRImageStorage), str(early.SOPInstanceUID))
    row_id = queue.add(new_uid(), "CT1", [_pair(early), _pair(late), conflict], "me")
    first = recheck(ingestor.db, config.storage_path, queue.get(row_id))
    assert [i.failure_reason for i in first] == [0, NO_SUCH, CONFLICT]
    assert queue.save_results(row_id, "me", [i.failure_reason for i in first])
    assert not queue.save_results(row_id, "someone-else", [0, 0, 0])

    ingestor.store_bytes(to_bytes(late))
    rel = Instance.get(Instance.sop_instance_uid == early.SOPInstanceUID).path
    (Path(config.storage_path) / rel).unlink()
    again = recheck(ingestor.db, config.storage_path, queue.get(row_id))
    assert [i.failure_reason for i in again] == [0, 0, CONFLICT]
    assert [(i.sop_class_uid, i.sop_instance_uid) for i in again] == [
        _pair(early),
        _pair(late),
        conflict,
    ]


def test_every_attempt_rechecks_and_records(config: Config, ingestor: Ingestor) -> None:
    """A request whose report cannot be delivered (the requester is down) is re-checked at each
    attempt: an instance archived after the N-ACTION turns committed in the recorded verdicts
    while the request is still pending, so the report that finally goes out says so."""
    down = RemoteNode("requester", "REQ", "127.0.0.1", free_port())
    service = CommitmentService(
        replace(config, commitment_retry_delay=0.05, commitment_max_retry_delay=0.1),
        ingestor.db,
        lambda ae: down,
        max_attempts=1000,
        poll_interval=0.05,
    )
    stored, late = _datasets(2)
    ingestor.store_bytes(to_bytes(stored))
    tx = new_uid()
    row_id = queue.add(tx, "REQ", [_pair(stored), _pair(late)], "")
    service.start()
    try:
        deadline = time.monotonic() + 30
        first = queue.get(row_id)
        while first.attempts < 1:
            assert time.monotonic() < deadline, "no attempt recorded"
            time.sleep(0.05)  # polling the row the reporter thread writes
            first = queue.get(row_id)
        assert _reasons(first) == [0, NO_SUCH]
        assert "did not take the report" in first.last_error
        ingestor.store_bytes(to_bytes(late))
        deadline = time.monotonic() + 30
        report = queue.get(row_id)
        while report.failed:
            assert time.monotonic() < deadline, "the late instance was never re-checked"
            time.sleep(0.05)
            report = queue.get(row_id)
    finally:
        service.stop()
    assert report.state == CommitmentState.PENDING
    assert _reasons(report) == [0, 0] and report.attempts >= 1


def test_retry_command_rechecks_first(config: Config, ingestor: Ingestor) -> None:
    """`tui-pacs commitment retry` checks the failed instances again before queueing the
    report: one archived since counts as committed, in the command's output and the record."""
    stored, late = _datasets(2)
    ingestor.store_bytes(to_bytes(stored))
    tx = new_uid()
    row_id = queue.add(tx, "REQ", [_pair(stored), _pair(late)], "me")
    checked = recheck(ingestor.db, config.storage_path, queue.get(row_id))
    assert queue.save_results(row_id, "me", [i.failure_reason for i in checked])
    assert queue.attempt_failed(row_id, tx, "me", "gone", None) == CommitmentState.FAILED
    assert (queue.get(row_id).committed, queue.get(row_id).failed) == (1, 1)

    ingestor.store_bytes(to_bytes(late))
    result = CliRunner().invoke(main, ["commitment", "retry", str(row_id)], obj={"config": config})
    assert result.exit_code == 0, result.output
    assert f"request {row_id} ({tx}) is pending again: 2/2 committed" in result.stdout
    report = queue.get(row_id)
    assert (report.state, report.attempts) == (CommitmentState.PENDING, 0)
    assert _reasons(report) == [0, 0]
    with pytest.raises(queue.CommitmentError, match="only failed ones"):
        retry_report(config, row_id)
