"""Modality Performed Procedure Step instances in the index (PS3.4 F.7), and the orders they move.

N-CREATE makes an ``IN PROGRESS`` instance and links it to the orders its Scheduled Step
Attributes Sequence names; N-SET merges its modification list and may end it (``COMPLETED`` or
``DISCONTINUED``), after which it can no longer be updated (PS3.4 F.7.2.2). The linked orders'
status follows, and the performed series and instances are kept as rows.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import peewee as pw
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from tui_pacs.errors import (
    DuplicateProcedureStepError,
    InvalidProcedureStepError,
    ProcedureStepStateError,
    UnknownProcedureStepError,
)
from tui_pacs.model import OrderStatus, PerformedStepInfo
from tui_pacs.store.db import thread_connection
from tui_pacs.store.models import (
    Change,
    PerformedInstance,
    PerformedProcedureStep,
    PerformedProcedureStepOrder,
    WorklistItem,
    utcnow,
)
from tui_pacs.store.worklist import set_status, tuples

log = logging.getLogger(__name__)

#: Change feed kind of MPPS changes (uid: the SOP Instance UID).
CHANGE_KIND = "mpps"
IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
DISCONTINUED = "DISCONTINUED"
STATUSES = (IN_PROGRESS, COMPLETED, DISCONTINUED)
#: The order status each MPPS status gives its orders.
ORDER_STATUS = {
    IN_PROGRESS: OrderStatus.IN_PROGRESS,
    COMPLETED: OrderStatus.COMPLETED,
    DISCONTINUED: OrderStatus.DISCONTINUED,
}
#: Error Comment of an N-SET to a finished step (PS3.4 F.7.2.2, Error ID 0xA710).
MAY_NO_LONGER_BE_UPDATED = "Performed Procedure Step Object may no longer be updated"

_STATUS_TAG = 0x00400252
#: Where a Performed Series Sequence item lists its instances.
_REFERENCE_SEQUENCES = ("ReferencedImageSequence", "ReferencedNonImageCompositeSOPInstanceSequence")
_SSAS_TAG = 0x00400270


@dataclass(frozen=True, slots=True)
class StepResult:
    """What an N-CREATE or N-SET did.

    Attributes:
        attributes: The instance's attributes after the operation.
        order_ids: The orders linked to the step.
    """

    attributes: Dataset
    order_ids: tuple[int, ...]


def _text(ds: Dataset, keyword: str, limit: int = 64) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit]


def _status_of(ds: Dataset) -> str:
    return _text(ds, "PerformedProcedureStepStatus").upper()


def _first_item(ds: Dataset, keyword: str) -> Dataset:
    seq = ds.get(keyword)
    return seq[0] if seq else Dataset()


def _summary(ds: Dataset) -> dict[str, object]:
    scheduled = _first_item(ds, "ScheduledStepAttributesSequence")
    reason = _first_item(ds, "PerformedProcedureStepDiscontinuationReasonCodeSequence")
    return {
        "performed_procedure_step_status": _status_of(ds),
        "performed_procedure_step_id": _text(ds, "PerformedProcedureStepID", 16),
        "performed_station_ae_title": _text(ds, "PerformedStationAETitle", 16),
        "modality": _text(ds, "Modality", 16),
        "patient_id": _text(ds, "PatientID"),
        "patient_name": _text(ds, "PatientName", 324),
        "study_instance_uid": _text(scheduled, "StudyInstanceUID"),
        "accession_number": _text(scheduled, "AccessionNumber", 16),
        "scheduled_procedure_step_id": _text(scheduled, "ScheduledProcedureStepID", 16),
        "performed_procedure_step_start_date": _text(ds, "PerformedProcedureStepStartDate", 8),
        "performed_procedure_step_start_time": _text(ds, "PerformedProcedureStepStartTime", 16),
        "performed_procedure_step_end_date": _text(ds, "PerformedProcedureStepEndDate", 8),
        "performed_procedure_step_end_time": _text(ds, "PerformedProcedureStepEndTime", 16),
        "discontinuation_reason": _text(reason, "CodeMeaning"),
        "attributes": ds.to_json(),
    }


def performed_instances(ds: Dataset) -> list[tuple[str, str, str]]:
    """``(series uid, SOP class uid, SOP instance uid)`` of every instance the step references."""
    out: list[tuple[str, str, str]] = []
    for series in ds.get("PerformedSeriesSequence") or []:
        series_uid = _text(series, "SeriesInstanceUID")
        for keyword in (
            "ReferencedImageSequence",
            "ReferencedNonImageCompositeSOPInstanceSequence",
        ):
            for item in series.get(keyword) or []:
                sop_uid = _text(item, "ReferencedSOPInstanceUID")
                if sop_uid:
                    out.append((series_uid, _text(item, "ReferencedSOPClassUID"), sop_uid))
    return out


def _check_status(ds: Dataset, *, creating: bool) -> None:
    status = _status_of(ds)
    if creating and "PerformedProcedureStepStatus" not in ds:
        raise InvalidProcedureStepError(
            "Performed Procedure Step Status is missing", (_STATUS_TAG,), missing=True
        )
    if creating and status != IN_PROGRESS:
        raise InvalidProcedureStepError(
            f"a new step must be IN PROGRESS, not {status or 'empty'}", (_STATUS_TAG,)
        )
    if status and status not in STATUSES:
        raise InvalidProcedureStepError(
            f"Performed Procedure Step Status {status!r} is not one of {', '.join(STATUSES)}",
            (_STATUS_TAG,),
        )


def _orders_for(item: Dataset) -> list[int]:
    """Orders one Scheduled Step Attributes item names: by Study Instance UID, else accession."""
    study_uid = _text(item, "StudyInstanceUID")
    accession = _text(item, "AccessionNumber", 16)
    sps_id = _text(item, "ScheduledProcedureStepID", 16)
    w = WorklistItem
    candidates: list[tuple[Any, ...]] = []
    if study_uid:
        candidates = tuples(
            w.select(w.id, w.scheduled_procedure_step_id, w.accession_number).where(
                w.study_instance_uid == study_uid
            )
        )
    if not candidates and accession:
        candidates = tuples(
            w.select(w.id, w.scheduled_procedure_step_id, w.accession_number).where(
                w.accession_number == accession
            )
        )
    if len(candidates) > 1 and sps_id:
        narrowed = [c for c in candidates if c[1] == sps_id]
        candidates = narrowed or candidates
    if len(candidates) > 1 and accession:
        narrowed = [c for c in candidates if c[2] == accession]
        candidates = narrowed or candidates
    return [c[0] for c in candidates]


def _replace_instances(step_id: int, ds: Dataset) -> None:
    PerformedInstance.delete().where(PerformedInstance.step == step_id).execute()
    rows = [
        {
            "step": step_id,
            "series_instance_uid": series[:64],
            "referenced_sop_class_uid": sop_class[:64],
            "referenced_sop_instance_uid": sop_uid[:64],
        }
        for series, sop_class, sop_uid in performed_instances(ds)
    ]
    for start in range(0, len(rows), 200):
        PerformedInstance.insert_many(rows[start : start + 200]).execute()


def _follow(db: pw.Database, order_ids: Sequence[int], status: str) -> None:
    """Move the linked orders (those not cancelled at the desk) to the step's status."""
    if not order_ids:
        return
    live = [
        row[0]
        for row in tuples(
            WorklistItem.select(WorklistItem.id).where(
                WorklistItem.id.in_(list(order_ids)) & WorklistItem.cancelled_at.is_null()
            )
        )
    ]
    set_status(db, live, ORDER_STATUS[status])


def create_step(
    db: pw.Database, sop_instance_uid: str, attributes: Dataset, calling_ae_title: str
) -> StepResult:
    """N-CREATE: store a new IN PROGRESS step and link it to its orders.

    Raises:
        InvalidProcedureStepError: The status is missing or not IN PROGRESS, or there is no
            Scheduled Step Attributes Sequence.
        DuplicateProcedureStepError: The SOP Instance UID exists already.
    """
    _check_status(attributes, creating=True)
    if not attributes.get("ScheduledStepAttributesSequence"):
        raise InvalidProcedureStepError(
            "Scheduled Step Attributes Sequence is missing or empty", (_SSAS_TAG,), missing=True
        )
    ds = copy.deepcopy(attributes)
    now = utcnow()
    with thread_connection(db):
        try:
            with db.atomic():
                if (
                    PerformedProcedureStep.select()
                    .where(PerformedProcedureStep.sop_instance_uid == sop_instance_uid)
                    .exists()
                ):
                    raise DuplicateProcedureStepError(f"MPPS {sop_instance_uid} exists already")
                step = PerformedProcedureStep.create(
                    sop_instance_uid=sop_instance_uid,
                    calling_ae_title=calling_ae_title[:16],
                    created_at=now,
                    updated_at=now,
                    **_summary(ds),
                )
                order_ids: list[int] = []
                for item in ds.ScheduledStepAttributesSequence:
                    for order_id in _orders_for(item):
                        if order_id not in order_ids:
                            order_ids.append(order_id)
                            PerformedProcedureStepOrder.create(step=step, order=order_id)
                _replace_instances(step.id, ds)
                _follow(db, order_ids, IN_PROGRESS)
                Change.create(kind=CHANGE_KIND, uid=sop_instance_uid, at=now)
        except pw.IntegrityError:
            raise DuplicateProcedureStepError(f"MPPS {sop_instance_uid} exists already") from None
    if not order_ids:
        log.info(
            "MPPS %s from %s matches no order (unscheduled)", sop_instance_uid, calling_ae_title
        )
    return StepResult(ds, tuple(order_ids))


def update_step(db: pw.Database, sop_instance_uid: str, modifications: Dataset) -> StepResult:
    """N-SET: merge the modification list into a step still IN PROGRESS.

    Raises:
        UnknownProcedureStepError: No step has this SOP Instance UID.
        ProcedureStepStateError: The step is COMPLETED or DISCONTINUED already.
        InvalidProcedureStepError: The new status is not a Performed Procedure Step Status.
    """
    _check_status(modifications, creating=False)
    now = utcnow()
    with thread_connection(db), db.atomic():
        step = PerformedProcedureStep.get_or_none(
            PerformedProcedureStep.sop_instance_uid == sop_instance_uid
        )
        if step is None:
            raise UnknownProcedureStepError(f"no MPPS instance {sop_instance_uid}")
        if step.performed_procedure_step_status != IN_PROGRESS:
            raise ProcedureStepStateError(MAY_NO_LONGER_BE_UPDATED, (_STATUS_TAG,))
        ds = Dataset.from_json(step.attributes)
        for elem in modifications:
            ds[elem.tag] = elem
        if not _status_of(ds):
            ds.PerformedProcedureStepStatus = IN_PROGRESS
        summary = _summary(ds)
        # The links were made at N-CREATE (the sequence may not change in an N-SET).
        for key in ("study_instance_uid", "accession_number", "scheduled_procedure_step_id"):
            summary.pop(key)
        PerformedProcedureStep.update(updated_at=now, **summary).where(
            PerformedProcedureStep.id == step.id
        ).execute()
        if "PerformedSeriesSequence" in modifications:
            _replace_instances(step.id, ds)
        order_ids = [
            row[0]
            for row in tuples(
                PerformedProcedureStepOrder.select(PerformedProcedureStepOrder.order).where(
                    PerformedProcedureStepOrder.step == step.id
                )
            )
        ]
        status = _status_of(ds)
        if status != step.performed_procedure_step_status:
            _follow(db, order_ids, status)
        Change.create(kind=CHANGE_KIND, uid=sop_instance_uid, at=now)
    return StepResult(ds, tuple(order_ids))


def steps_info(db: pw.Database, order_ids: Iterable[int] | None = None) -> list[PerformedStepInfo]:
    """MPPS instances (of these orders, or all), latest first."""
    s, link = PerformedProcedureStep, PerformedProcedureStepOrder
    with thread_connection(db):
        query = s.select().order_by(s.updated_at.desc(), s.id.desc())
        if order_ids is not None:
            ids = sorted(set(order_ids))
            if not ids:
                return []
            query = query.where(s.id.in_(link.select(link.step).where(link.order.in_(ids))))
        steps = list(query)
        if not steps:
            return []
        step_ids = [step.id for step in steps]
        counts: dict[int, int] = {
            row[0]: int(row[1])
            for row in tuples(
                PerformedInstance.select(
                    PerformedInstance.step,
                    pw.fn.COUNT(PerformedInstance.referenced_sop_instance_uid.distinct()),
                )
                .where(PerformedInstance.step.in_(step_ids))
                .group_by(PerformedInstance.step)
            )
        }
        links: dict[int, list[int]] = {}
        for step_id, order_id in tuples(
            link.select(link.step, link.order).where(link.step.in_(step_ids))
        ):
            links.setdefault(step_id, []).append(order_id)
    return [
        PerformedStepInfo(
            sop_instance_uid=step.sop_instance_uid,
            status=step.performed_procedure_step_status,
            performed_station_ae_title=step.performed_station_ae_title,
            modality=step.modality,
            start_date=step.performed_procedure_step_start_date,
            start_time=step.performed_procedure_step_start_time,
            end_date=step.performed_procedure_step_end_date,
            end_time=step.performed_procedure_step_end_time,
            discontinuation_reason=step.discontinuation_reason,
            instances=int(counts.get(step.id, 0)),
            order_ids=tuple(sorted(links.get(step.id, []))),
            calling_ae_title=step.calling_ae_title,
            updated_at=step.updated_at,
        )
        for step in steps
    ]


def step_attributes(db: pw.Database, sop_instance_uid: str) -> Dataset:
    """Every attribute of a step (an N-GET would answer with these).

    Raises:
        UnknownProcedureStepError: No step has this SOP Instance UID.
    """
    with thread_connection(db):
        step = PerformedProcedureStep.get_or_none(
            PerformedProcedureStep.sop_instance_uid == sop_instance_uid
        )
    if step is None:
        raise UnknownProcedureStepError(f"no MPPS instance {sop_instance_uid}")
    return Dataset.from_json(json.loads(step.attributes))
