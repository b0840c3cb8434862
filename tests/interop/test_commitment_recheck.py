"""Storage commitment on the wire with a ``[commitment]`` section: ``tui-pacs serve`` retries on
the configured schedule (not the default 30 s), and an instance that a modality stores (DCMTK
storescu) after its N-ACTION, while the requester is unreachable, is reported as committed by
the later attempt. A pynetdicom SCU is the requester (DCMTK has no commitment SCU)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import CTImageStorage
from pynetdicom import AE
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

from tests.interop.test_commitment_restart import _datasets, _registry, _wait_row
from tests.interop.test_commitment_retries import Requester
from tests.interop.test_commitment_scp import REQUESTER, WELL_KNOWN, _refs, _request
from tests.peers import NodeProcess, run_dcmtk
from tests.store.synthetic import to_bytes
from tui_pacs.model import CommitmentState

pytestmark = pytest.mark.interop

SCHEDULE = """
[commitment]
retry_delay = 0.2
max_retry_delay = 0.5
max_attempts = 200
keep_days = 30
"""


def test_late_instance_is_reported_committed(tmp_path: Path, db_url: str) -> None:
    """N-ACTION for two stored instances and one not yet sent, requester down: the first
    attempt records it as failed (0x0112). storescu then stores it; a later attempt (0.5 s
    apart as configured) records it committed while the requester is still down; once the
    requester is up, the report commits all three, and the record says what was sent."""
    requester = Requester()
    node = NodeProcess(
        tmp_path / "node", database_url=db_url, extra=_registry(requester.port) + SCHEDULE
    ).start()
    stored, late = _datasets(2), _datasets(1)[0]
    late_file = tmp_path / "late.dcm"
    late_file.write_bytes(to_bytes(late))
    try:
        ae = AE(ae_title=REQUESTER)
        ae.add_requested_context(CTImageStorage)
        ae.add_requested_context(StorageCommitmentPushModel)
        assoc = ae.associate("127.0.0.1", node.port, ae_title=node.ae_title)
        assert assoc.is_established
        try:
            for ds in stored:
                assert int(assoc.send_c_store(ds).Status) == 0
            items = [(str(d.SOPClassUID), str(d.SOPInstanceUID)) for d in [*stored, late]]
            request = _request(items)
            status, _ = assoc.send_n_action(request, 1, StorageCommitmentPushModel, WELL_KNOWN)
            assert int(status.Status) == 0
        finally:
            assoc.release()
        tx = str(request.TransactionUID)
        waiting = _wait_row(db_url, tx, lambda r: r.attempts >= 1, node)
        assert waiting.state == CommitmentState.PENDING
        assert (waiting.committed, waiting.failed) == (2, 1)

        sent = run_dcmtk(
            "storescu", "-aet", "MODALITY", "-aec", node.ae_title,
            "127.0.0.1", str(node.port), str(late_file),
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        # Up only once an attempt has recorded the new verdict: an attempt that checked just
        # before the store could otherwise still reach the requester with the old one.
        rechecked = _wait_row(db_url, tx, lambda r: r.failed == 0, node)
        assert rechecked.state == CommitmentState.PENDING
        requester.up()
        event_type, info, where = requester.reports.wait()
        row = _wait_row(db_url, tx, lambda r: r.state != CommitmentState.PENDING, node)
        assert "more instance(s) committed since the last check" in node.log()
    finally:
        requester.down()
        assert node.stop() == 0, node.log()[-3000:]
    assert (event_type, where) == (1, "new-association")
    assert info.TransactionUID == tx
    assert _refs(info.ReferencedSOPSequence) == sorted((c, u, None) for c, u in items)
    assert "FailedSOPSequence" not in info
    assert (row.state, row.committed, row.failed) == (CommitmentState.DELIVERED, 3, 0)
    assert row.attempts >= 2
    assert len(requester.reports.received) == 1
