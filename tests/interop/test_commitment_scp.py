"""Our Storage Commitment Push Model SCP driven by a pynetdicom SCU: N-ACTION, then the
N-EVENT-REPORT on the same association (kept open) or on a new one to the requester (released),
with the committed and the failed instances (no such object, class conflict, not intact), and the
refused requests (action type, arguments, instance, permission)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, MRImageStorage
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

from tests.peers import free_port
from tests.store.synthetic import new_uid
from tests.worklist_data import archive_study
from tui_pacs.config import Config
from tui_pacs.model import DimseService, RemoteNode
from tui_pacs.services.node import Node
from tui_pacs.store.models import Instance

pytestmark = pytest.mark.interop

REQUESTER = "COMMIT_SCU"
WELL_KNOWN = "1.2.840.10008.1.20.1.1"


@dataclass
class Reports:
    """N-EVENT-REPORTs the requester received."""

    received: list[tuple[int, Dataset, str]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def handler(self, event: evt.Event, where: str) -> tuple[int, None]:
        self.received.append((int(event.event_type), event.event_information, where))
        self.arrived.set()
        return 0x0000, None

    def wait(self) -> tuple[int, Dataset, str]:
        assert self.arrived.wait(30), "no N-EVENT-REPORT within 30 s"
        return self.received[0]


@pytest.fixture
def requester() -> Iterator[tuple[AE, int, Reports]]:
    """The requester's own SCP, where reports on a new association arrive."""
    reports = Reports()
    ae = AE(ae_title=REQUESTER)
    ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port),
        block=False,
        evt_handlers=[(evt.EVT_N_EVENT_REPORT, reports.handler, ["new-association"])],
    )
    try:
        yield ae, port, reports
    finally:
        server.shutdown()


@pytest.fixture
def node(config: Config, requester: tuple[AE, int, Reports]) -> Iterator[Node]:
    """An in-process node knowing the requester; "NO_COMMIT" may only store."""
    _ae, port, _reports = requester
    nodes = (
        RemoteNode("requester", REQUESTER, "127.0.0.1", port),
        RemoteNode(
            "limited", "NO_COMMIT", "127.0.0.1", 1, allowed_services=frozenset({DimseService.STORE})
        ),
    )
    node = Node(replace(config, nodes=nodes))
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _request(items: list[tuple[str, str]], transaction: str | None = None) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction or new_uid()
    refs = []
    for sop_class, sop_uid in items:
        ref = Dataset()
        ref.ReferencedSOPClassUID = sop_class
        ref.ReferencedSOPInstanceUID = sop_uid
        refs.append(ref)
    ds.ReferencedSOPSequence = refs
    return ds


def _associate(
    node: Node, reports: Reports | None = None, ae_title: str = REQUESTER
) -> Association:
    ae = AE(ae_title=ae_title)
    ae.add_requested_context(StorageCommitmentPushModel)
    handlers: list[Any] = []
    if reports is not None:
        handlers = [(evt.EVT_N_EVENT_REPORT, reports.handler, ["same-association"])]
    assoc = ae.associate(
        "127.0.0.1", node.port, ae_title=node.config.ae_title, evt_handlers=handlers
    )
    assert assoc.is_established
    return assoc


def _refs(seq: Any) -> list[tuple[str, str, int | None]]:
    return sorted(
        (str(i.ReferencedSOPClassUID), str(i.ReferencedSOPInstanceUID), i.get("FailureReason"))
        for i in seq or []
    )


def test_report_on_the_same_association(node: Node) -> None:
    """Kept open, the association carries the report: committed instances, and the failed ones
    with Failure Reason 0x0112 (unknown) and 0x0119 (another SOP class)."""
    made = archive_study(node.ingestor, study_uid=new_uid(), per_series=3)
    unknown = (str(CTImageStorage), new_uid())
    conflict = (str(MRImageStorage), made[2][1])
    reports = Reports()
    assoc = _associate(node, reports)
    try:
        request = _request([made[0], made[1], unknown, conflict])
        status, _ = assoc.send_n_action(request, 1, StorageCommitmentPushModel, WELL_KNOWN)
        assert int(status.Status) == 0x0000
        event_type, info, where = reports.wait()
    finally:
        assoc.release()
    assert (event_type, where) == (2, "same-association")
    assert info.TransactionUID == request.TransactionUID
    assert info.RetrieveAETitle == node.config.ae_title
    assert _refs(info.ReferencedSOPSequence) == sorted((c, u, None) for c, u in made[:2])
    assert _refs(info.FailedSOPSequence) == sorted([(*unknown, 0x0112), (*conflict, 0x0119)])


def test_report_on_a_new_association(
    node: Node, requester: tuple[AE, int, Reports], config: Config
) -> None:
    """Released right after the N-ACTION response, the requester gets the report on a new
    association to its registry address: all committed (event type 1); then an instance whose
    file was removed from the archive fails (0x0110)."""
    _ae, _port, reports = requester
    made = archive_study(node.ingestor, study_uid=new_uid(), per_series=2)
    assoc = _associate(node)
    try:
        status, _ = assoc.send_n_action(_request(made), 1, StorageCommitmentPushModel, WELL_KNOWN)
        assert int(status.Status) == 0x0000
    finally:
        assoc.release()
    event_type, info, where = reports.wait()
    assert (event_type, where) == (1, "new-association")
    assert _refs(info.ReferencedSOPSequence) == sorted((c, u, None) for c, u in made)
    assert "FailedSOPSequence" not in info
    rel = Instance.get(Instance.sop_instance_uid == made[1][1]).path
    (Path(config.storage_path) / rel).unlink()
    reports.received.clear()
    reports.arrived.clear()
    assoc = _associate(node)
    try:
        status, _ = assoc.send_n_action(_request(made), 1, StorageCommitmentPushModel, WELL_KNOWN)
    finally:
        assoc.release()
    event_type, info, _where = reports.wait()
    assert event_type == 2
    assert _refs(info.FailedSOPSequence) == [(*made[1], 0x0110)]
    assert node.commitment.wait_idle()
    assert set(node.commitment.outcomes.values()) == {"new-association"}


def test_refused_requests(node: Node) -> None:
    """Another action type 0x0123, no Transaction UID or no references 0x0115, another SOP
    instance 0x0112, an AE without the commit permission 0x0124; none is reported."""
    made = archive_study(node.ingestor, study_uid=new_uid())
    assoc = _associate(node)
    try:
        wrong_action, _ = assoc.send_n_action(
            _request(made), 2, StorageCommitmentPushModel, WELL_KNOWN
        )
        assert int(wrong_action.Status) == 0x0123
        no_transaction = _request(made)
        del no_transaction.TransactionUID
        status, _ = assoc.send_n_action(no_transaction, 1, StorageCommitmentPushModel, WELL_KNOWN)
        assert int(status.Status) == 0x0115 and "Transaction UID" in status.ErrorComment
        status, _ = assoc.send_n_action(_request([]), 1, StorageCommitmentPushModel, WELL_KNOWN)
        assert int(status.Status) == 0x0115
        status, _ = assoc.send_n_action(_request(made), 1, StorageCommitmentPushModel, new_uid())
        assert int(status.Status) == 0x0112
    finally:
        assoc.release()
    limited = _associate(node, ae_title="NO_COMMIT")
    try:
        status, _ = limited.send_n_action(_request(made), 1, StorageCommitmentPushModel, WELL_KNOWN)
        assert int(status.Status) == 0x0124
    finally:
        limited.release()
    assert node.commitment.wait_idle()
    assert node.commitment.outcomes == {}


def test_unknown_requester_is_logged_undelivered(node: Node) -> None:
    """A requester outside the registry that does not wait cannot be reported to: the
    transaction is recorded as undelivered."""
    made = archive_study(node.ingestor, study_uid=new_uid())
    assoc = _associate(node, ae_title="STRANGER")
    request = _request(made)
    try:
        status, _ = assoc.send_n_action(request, 1, StorageCommitmentPushModel, WELL_KNOWN)
        assert int(status.Status) == 0
    finally:
        assoc.release()
    assert node.commitment.wait_idle()
    outcome = node.commitment.outcomes[str(request.TransactionUID)]
    assert outcome == "undelivered: STRANGER is not in the node registry"
