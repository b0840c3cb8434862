"""MPPS rows (state rules, links to orders, performed instances) and storage commitment checks
(index row, file, size, checksum, SOP class) in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pydicom.uid import CTImageStorage, MRImageStorage

from tests.store.synthetic import new_uid, open_ingestor
from tests.worklist_data import BASE, archive_study, mpps_create, mpps_final
from tui_pacs.config import Config
from tui_pacs.errors import (
    DuplicateProcedureStepError,
    InvalidProcedureStepError,
    ProcedureStepStateError,
    UnknownProcedureStepError,
)
from tui_pacs.model import OrderStatus
from tui_pacs.services.ingest import Ingestor
from tui_pacs.services.worklist import WorklistService
from tui_pacs.store import mpps
from tui_pacs.store.commitment import (
    CLASS_INSTANCE_CONFLICT,
    NO_SUCH_OBJECT_INSTANCE,
    PROCESSING_FAILURE,
    check_instances,
)
from tui_pacs.store.models import Change, Instance, PerformedInstance


@pytest.fixture
def ingestor(config: Config) -> Iterator[Ingestor]:
    with open_ingestor(config) as ingestor:
        yield ingestor


@pytest.fixture
def service(config: Config, ingestor: Ingestor) -> WorklistService:
    return WorklistService(config, ingestor.db)


def test_create_links_orders_and_moves_them(service: WorklistService) -> None:
    """N-CREATE links the step to the order with its Study Instance UID (else its accession, then
    narrowed by SPS ID) and makes it in progress; an unscheduled step links nothing."""
    db = service.db
    by_uid = service.create(BASE)
    first = service.create(replace(BASE, accession_number="A2", scheduled_procedure_step_id="S1"))
    second = service.create(replace(BASE, accession_number="A2", scheduled_procedure_step_id="S2"))
    result = mpps.create_step(db, new_uid(), mpps_create(study_uid=by_uid.study_instance_uid), "X")
    assert result.order_ids == (by_uid.id,)
    result = mpps.create_step(
        db, new_uid(), mpps_create(study_uid=new_uid(), accession="A2", sps_id="S2"), "X"
    )
    assert result.order_ids == (second.id,)
    both = mpps.create_step(db, new_uid(), mpps_create(study_uid=new_uid(), accession="A2"), "X")
    assert both.order_ids == (first.id, second.id)
    lone = mpps.create_step(db, new_uid(), mpps_create(study_uid=new_uid()), "X")
    assert lone.order_ids == ()
    statuses = {o.id: o.status for o in service.list_orders()}
    assert set(statuses.values()) == {OrderStatus.IN_PROGRESS}
    assert Change.select().where(Change.kind == "mpps").count() == 4


def test_create_refuses_bad_steps(service: WorklistService) -> None:
    """A second N-CREATE of the same instance, a status other than IN PROGRESS, or no
    Scheduled Step Attributes Sequence are refused."""
    db = service.db
    uid = new_uid()
    mpps.create_step(db, uid, mpps_create(study_uid=new_uid()), "X")
    with pytest.raises(DuplicateProcedureStepError):
        mpps.create_step(db, uid, mpps_create(study_uid=new_uid()), "X")
    with pytest.raises(InvalidProcedureStepError, match="must be IN PROGRESS") as caught:
        mpps.create_step(db, new_uid(), mpps_create(study_uid=new_uid(), status="COMPLETED"), "X")
    assert not caught.value.missing and caught.value.offending_tags == (0x00400252,)
    missing = mpps_create(study_uid=new_uid())
    del missing.PerformedProcedureStepStatus
    with pytest.raises(InvalidProcedureStepError) as caught:
        mpps.create_step(db, new_uid(), missing, "X")
    assert caught.value.missing
    no_sequence = mpps_create(study_uid=new_uid())
    no_sequence.ScheduledStepAttributesSequence = []
    with pytest.raises(InvalidProcedureStepError, match="Scheduled Step Attributes"):
        mpps.create_step(db, new_uid(), no_sequence, "X")


def test_update_state_rules(service: WorklistService) -> None:
    """N-SET merges while IN PROGRESS; after COMPLETED or DISCONTINUED it is refused; an unknown
    instance or status is refused; the order follows; references are replaced, not added."""
    db = service.db
    order = service.create(BASE)
    uid = new_uid()
    mpps.create_step(db, uid, mpps_create(study_uid=order.study_instance_uid), "X")
    series = new_uid()
    refs = [(str(CTImageStorage), new_uid()) for _ in range(3)]
    partial = mpps_final("IN PROGRESS", refs[:1], series_uid=series)
    result = mpps.update_step(db, uid, partial)
    assert result.attributes.PerformedProcedureStepStatus == "IN PROGRESS"
    assert PerformedInstance.select().count() == 1
    mpps.update_step(db, uid, mpps_final("COMPLETED", refs, series_uid=series))
    assert PerformedInstance.select().count() == 3
    assert service.get(order.id).status == OrderStatus.COMPLETED
    with pytest.raises(ProcedureStepStateError, match="may no longer be updated"):
        mpps.update_step(db, uid, mpps_final("DISCONTINUED"))
    with pytest.raises(UnknownProcedureStepError):
        mpps.update_step(db, new_uid(), mpps_final())
    other = new_uid()
    mpps.create_step(db, other, mpps_create(study_uid=new_uid()), "X")
    with pytest.raises(InvalidProcedureStepError, match="not one of"):
        mpps.update_step(db, other, mpps_final("DONE"))
    attributes = mpps.step_attributes(db, uid)
    assert attributes.PerformedProcedureStepEndTime == "100000"
    assert len(attributes.PerformedSeriesSequence[0].ReferencedImageSequence) == 3
    info = {s.sop_instance_uid: s for s in mpps.steps_info(db)}
    assert (info[uid].status, info[uid].instances, info[uid].end_date) == (
        "COMPLETED",
        3,
        "20240501",
    )


def test_cancelled_order_is_not_revived(service: WorklistService) -> None:
    """An MPPS for an order cancelled at the desk links it but leaves it discontinued."""
    order = service.create(BASE)
    service.cancel(order.id)
    result = mpps.create_step(
        service.db, new_uid(), mpps_create(study_uid=order.study_instance_uid), "X"
    )
    assert result.order_ids == (order.id,)
    assert service.get(order.id).status == OrderStatus.DISCONTINUED


def test_commitment_checks_each_instance(config: Config, ingestor: Ingestor) -> None:
    """Only indexed instances of the stated class whose file is intact are committed; the others
    get no such object (0x0112), class/instance conflict (0x0119) or processing failure
    (0x0110: file missing, truncated or altered)."""
    made = archive_study(ingestor, study_uid=new_uid(), per_series=5)
    paths = {
        row.sop_instance_uid: Path(config.storage_path) / row.path
        for row in Instance.select(Instance.sop_instance_uid, Instance.path)
    }
    paths[made[1][1]].unlink()
    paths[made[2][1]].write_bytes(paths[made[2][1]].read_bytes()[:-10])
    altered = bytearray(paths[made[3][1]].read_bytes())
    altered[-1] ^= 0xFF
    paths[made[3][1]].write_bytes(bytes(altered))
    unknown = (str(CTImageStorage), new_uid())
    wrong_class = (str(MRImageStorage), made[4][1])
    requested = [made[0], made[1], made[2], made[3], unknown, wrong_class, made[0]]
    result = check_instances(ingestor.db, config.storage_path, requested)
    assert [(r.sop_instance_uid, r.failure_reason) for r in result] == [
        (made[0][1], 0),
        (made[1][1], PROCESSING_FAILURE),
        (made[2][1], PROCESSING_FAILURE),
        (made[3][1], PROCESSING_FAILURE),
        (unknown[1], NO_SUCH_OBJECT_INSTANCE),
        (made[4][1], CLASS_INSTANCE_CONFLICT),
        (made[0][1], 0),
    ]
    assert [r.sop_class_uid for r in result][-2] == str(MRImageStorage)
