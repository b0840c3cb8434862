"""Storage commitment across kill -9 of ``tui-pacs serve``: a request whose N-EVENT-REPORT was
not delivered (unanswered on the requester's association, or refused because the requester was
down) is reported on a new association by the restarted node, with the right committed and
failed lists, exactly once. A pynetdicom SCU is the requester."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

from tests.interop.test_commitment_retries import Requester
from tests.interop.test_commitment_scp import REQUESTER, WELL_KNOWN, _refs, _request
from tests.peers import NodeProcess
from tests.store.synthetic import make_dataset, new_uid
from tui_pacs.model import CommitmentReport, CommitmentState
from tui_pacs.store import commitment_queue as queue
from tui_pacs.store.db import open_database, thread_connection

pytestmark = [pytest.mark.interop, pytest.mark.slow]


def _registry(port: int) -> str:
    return f"""
[[nodes]]
name = "requester"
ae_title = "{REQUESTER}"
host = "127.0.0.1"
port = {port}
"""


def _node(tmp_path: Path, db_url: str, requester: Requester) -> NodeProcess:
    return NodeProcess(tmp_path / "node", database_url=db_url, extra=_registry(requester.port))


def _datasets(n: int) -> list[Dataset]:
    study, series = new_uid(), new_uid()
    return [
        make_dataset(study_uid=study, series_uid=series, instance_number=i + 1) for i in range(n)
    ]


def _store_and_ask(
    node: NodeProcess, datasets: list[Dataset], missing: tuple[str, str], handler: Callable | None
) -> tuple[object, str]:
    """C-STORE the data sets, then N-ACTION for them plus ``missing``; returns the open
    association and the Transaction UID."""
    ae = AE(ae_title=REQUESTER)
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(StorageCommitmentPushModel)
    handlers = [(evt.EVT_N_EVENT_REPORT, handler)] if handler else []
    assoc = ae.associate("127.0.0.1", node.port, ae_title=node.ae_title, evt_handlers=handlers)
    assert assoc.is_established
    for ds in datasets:
        assert int(assoc.send_c_store(ds).Status) == 0
    items = [(str(ds.SOPClassUID), str(ds.SOPInstanceUID)) for ds in datasets] + [missing]
    request = _request(items)
    status, _ = assoc.send_n_action(request, 1, StorageCommitmentPushModel, WELL_KNOWN)
    assert int(status.Status) == 0
    return assoc, str(request.TransactionUID)


def _wait_row(
    url: str, tx: str, done: Callable[[CommitmentReport], bool], node: NodeProcess
) -> CommitmentReport:
    """Poll the index (the node is another process) until the request satisfies ``done``."""
    db = open_database(url)
    deadline = time.monotonic() + 30
    while True:
        with thread_connection(db):
            found = queue.find(tx)
        if found and done(found[-1]):
            return found[-1]
        assert node.proc is not None and node.proc.poll() is None, node.log()[-3000:]
        assert time.monotonic() < deadline, f"request {tx}: {found}"
        time.sleep(0.05)


def _check_report(received: tuple[int, Dataset, str], tx: str, datasets: list[Dataset],
                  missing: tuple[str, str]) -> None:  # fmt: skip
    event_type, info, where = received
    assert (event_type, where) == (2, "new-association")
    assert info.TransactionUID == tx
    committed = sorted((str(d.SOPClassUID), str(d.SOPInstanceUID), None) for d in datasets)
    assert _refs(info.ReferencedSOPSequence) == committed
    assert _refs(info.FailedSOPSequence) == [(*missing, 0x0112)]


def test_kill_9_while_the_report_is_unanswered(tmp_path: Path, db_url: str) -> None:
    """The node is killed while its report waits for the requester's answer on the requester's
    association; restarted, it reports on a new association, once, and records it delivered."""
    requester = Requester()
    requester.up()
    node = _node(tmp_path, db_url, requester).start()
    in_flight, gate = threading.Event(), threading.Event()

    def unanswered(event: evt.Event) -> tuple[int, None]:
        in_flight.set()
        gate.wait(30)
        return 0x0000, None

    datasets = _datasets(2)
    missing = (str(CTImageStorage), new_uid())
    assoc: object = None
    try:
        assoc, tx = _store_and_ask(node, datasets, missing, unanswered)
        assert in_flight.wait(30), "no report on the requester's association"
        node.kill()
        gate.set()
        restarted = _node(tmp_path, db_url, requester).start()
        try:
            received = requester.reports.wait()
            row = _wait_row(db_url, tx, lambda r: r.state != CommitmentState.PENDING, restarted)
            assert "1 request(s) left unreported by a stopped node" in restarted.log()
        finally:
            assert restarted.stop() == 0, restarted.log()[-3000:]
    finally:
        gate.set()
        if assoc is not None:
            assoc.abort()  # type: ignore[attr-defined]
        requester.down()
        node.stop()
    _check_report(received, tx, datasets, missing)
    assert (row.state, row.report_via, row.attempts) == (
        CommitmentState.DELIVERED,
        "new-association",
        1,
    )
    assert len(requester.reports.received) == 1


def test_kill_9_after_the_requester_was_down(tmp_path: Path, db_url: str) -> None:
    """The requester is down at the first attempt (recorded: pending, next attempt later); the
    node is killed; restarted with the requester up, it reports at once on a new association."""
    requester = Requester()
    node = _node(tmp_path, db_url, requester).start()
    datasets = _datasets(3)
    missing = (str(CTImageStorage), new_uid())
    try:
        assoc, tx = _store_and_ask(node, datasets, missing, None)
        assoc.release()  # type: ignore[attr-defined]
        waiting = _wait_row(db_url, tx, lambda r: r.attempts >= 1, node)
        node.kill()
        assert waiting.state == CommitmentState.PENDING and waiting.owner == ""
        assert "did not take the report" in waiting.last_error
        assert waiting.next_attempt_at > waiting.updated_at
        requester.up()
        restarted = _node(tmp_path, db_url, requester).start()
        try:
            received = requester.reports.wait()
            row = _wait_row(db_url, tx, lambda r: r.state != CommitmentState.PENDING, restarted)
        finally:
            assert restarted.stop() == 0, restarted.log()[-3000:]
    finally:
        requester.down()
        node.stop()
    _check_report(received, tx, datasets, missing)
    assert (row.state, row.attempts, row.committed, row.failed) == (
        CommitmentState.DELIVERED,
        2,
        3,
        1,
    )
    assert len(requester.reports.received) == 1
