"""Our MPPS SCP driven by a pynetdicom SCU over a real association: N-CREATE and N-SET move the
order; the failure paths answer the statuses of PS3.4 F.7.2 (duplicate, unknown instance, no
update after COMPLETED with its Error ID and comment, bad attributes, not authorised)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import ModalityPerformedProcedureStep  # type: ignore[attr-defined]

from tests.store.synthetic import new_uid
from tests.worklist_data import BASE, archive_study, mpps_create, mpps_final
from tui_pacs.config import Config
from tui_pacs.model import DimseService, OrderStatus, RemoteNode
from tui_pacs.services.node import Node

pytestmark = pytest.mark.interop

CALLER = "MODALITY"


@pytest.fixture
def node(config: Config) -> Iterator[Node]:
    """An in-process node; the AE "NO_MPPS" may echo and store only."""
    limited = RemoteNode(
        "limited",
        "NO_MPPS",
        "127.0.0.1",
        1,
        allowed_services=frozenset({DimseService.ECHO, DimseService.STORE}),
    )
    node = Node(replace(config, nodes=(limited,)))
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _associate(node: Node, ae_title: str = CALLER) -> Association:
    ae = AE(ae_title=ae_title)
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = ae.associate("127.0.0.1", node.port, ae_title=node.config.ae_title)
    assert assoc.is_established
    return assoc


def _status(rsp: Dataset) -> int:
    return int(rsp.Status)


def test_create_and_complete_move_the_order(node: Node) -> None:
    """N-CREATE (IN PROGRESS) then N-SET (COMPLETED, with the performed series) succeed; the
    order follows and the performed instances are kept."""
    order = node.worklist.create(BASE)
    refs = archive_study(node.ingestor, study_uid=order.study_instance_uid, per_series=2)
    uid = new_uid()
    assoc = _associate(node)
    try:
        status, _attrs = assoc.send_n_create(
            mpps_create(study_uid=order.study_instance_uid), ModalityPerformedProcedureStep, uid
        )
        assert _status(status) == 0x0000
        assert node.worklist.get(order.id).status == OrderStatus.IN_PROGRESS
        status, _attrs = assoc.send_n_set(
            mpps_final("COMPLETED", refs), ModalityPerformedProcedureStep, uid
        )
        assert _status(status) == 0x0000
    finally:
        assoc.release()
    progress = node.worklist.progress([node.worklist.get(order.id)])[0]
    assert progress.order.status == OrderStatus.COMPLETED
    assert (progress.mpps_status, progress.mpps_instances, progress.instances_received) == (
        "COMPLETED",
        2,
        2,
    )
    assert progress.flags == ()
    (step,) = node.worklist.performed_steps(order.id)
    assert (step.calling_ae_title, step.performed_station_ae_title) == (CALLER, "CT1")


def test_failure_statuses(node: Node) -> None:
    """Duplicate N-CREATE 0x0111, N-SET of an unknown instance 0x0112, N-SET after COMPLETED
    0x0110 with Error ID 0xA710, a new step not IN PROGRESS 0x0106, no scheduled step
    attributes 0x0120."""
    order = node.worklist.create(BASE)
    uid = new_uid()
    create = mpps_create(study_uid=order.study_instance_uid)
    assoc = _associate(node)
    try:
        assert _status(assoc.send_n_create(create, ModalityPerformedProcedureStep, uid)[0]) == 0
        duplicate, _ = assoc.send_n_create(create, ModalityPerformedProcedureStep, uid)
        assert _status(duplicate) == 0x0111
        unknown, _ = assoc.send_n_set(mpps_final(), ModalityPerformedProcedureStep, new_uid())
        assert _status(unknown) == 0x0112
        assert _status(assoc.send_n_set(mpps_final(), ModalityPerformedProcedureStep, uid)[0]) == 0
        late, _ = assoc.send_n_set(mpps_final("DISCONTINUED"), ModalityPerformedProcedureStep, uid)
        assert _status(late) == 0x0110
        assert late.ErrorID == 0xA710
        assert late.ErrorComment == "Performed Procedure Step Object may no longer be updated"
        finished = mpps_create(study_uid=new_uid(), status="COMPLETED")
        bad, _ = assoc.send_n_create(finished, ModalityPerformedProcedureStep, new_uid())
        assert _status(bad) == 0x0106 and "IN PROGRESS" in bad.ErrorComment
        orphan = mpps_create(study_uid=new_uid())
        del orphan.ScheduledStepAttributesSequence
        missing, _ = assoc.send_n_create(orphan, ModalityPerformedProcedureStep, new_uid())
        assert _status(missing) == 0x0120
    finally:
        assoc.release()
    assert node.worklist.get(order.id).status == OrderStatus.COMPLETED


def test_uid_assigned_and_permissions(node: Node) -> None:
    """An N-CREATE without an instance UID gets one from us; an AE without the mpps permission
    is refused (0x0124)."""
    assoc = _associate(node)
    try:
        status, _ = assoc.send_n_create(
            mpps_create(study_uid=new_uid()), ModalityPerformedProcedureStep, None
        )
        assert _status(status) == 0
    finally:
        assoc.release()
    (step,) = node.worklist.performed_steps()
    assert step.sop_instance_uid.startswith("2.25.")
    refused = _associate(node, "NO_MPPS")
    try:
        status, _ = refused.send_n_create(
            mpps_create(study_uid=new_uid()), ModalityPerformedProcedureStep, new_uid()
        )
        assert _status(status) == 0x0124
        status, _ = refused.send_n_set(mpps_final(), ModalityPerformedProcedureStep, new_uid())
        assert _status(status) == 0x0124
    finally:
        refused.release()
    assert len(node.worklist.performed_steps()) == 1
