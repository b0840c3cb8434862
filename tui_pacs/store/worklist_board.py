"""Orders against the archive: the images received for each order, its MPPS, and the flags.

An order is matched to archived studies by Study Instance UID, else by Accession Number (PS3.4
K.6 assigns the Study Instance UID with the order, so a modality that copies it from the worklist
matches exactly; one that does not still carries the accession number). Every function here
answers a whole list of orders with a fixed number of queries (``IN`` lists in chunks), never
one query per order.

The patient name compared with an order's is the archive's patient record, which keeps one name
per Patient ID (the name of the first images received for it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import peewee as pw

from tui_pacs.model import (
    OrderFlag,
    OrderProgress,
    OrderStatus,
    UnmatchedStudy,
    WorklistFilter,
    WorklistOrder,
)
from tui_pacs.store.db import is_sqlite, thread_connection
from tui_pacs.store.header import norm_text
from tui_pacs.store.matching import Matcher
from tui_pacs.store.models import (
    Instance,
    Patient,
    PerformedInstance,
    PerformedProcedureStep,
    PerformedProcedureStepOrder,
    Series,
    Study,
    WorklistItem,
)
from tui_pacs.store.worklist import chunks, order_from_row, set_status, tuples

#: MPPS statuses after which the reported instance count is final.
_FINAL_MPPS = ("COMPLETED", "DISCONTINUED")
#: How many unmatched studies the board lists at most (newest first).
UNMATCHED_LIMIT = 500
#: Orders scheduled more than this many days ago are no longer settled by their images.
SETTLE_DAYS = 30


@dataclass(frozen=True, slots=True)
class _StudyRow:
    study_instance_uid: str
    accession_number: str
    patient_id: str
    patient_name: str
    series: int
    instances: int
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class _StepSummary:
    status: str
    instances: int


def _study_select() -> pw.Select:
    return Study.select(
        Study.study_instance_uid,
        Study.accession_number,
        Patient.patient_id,
        Patient.patient_name,
        Study.number_of_study_related_series,
        Study.number_of_study_related_instances,
        Study.updated_at,
    ).join(Patient)


def _study_rows(query: pw.Select) -> list[_StudyRow]:
    return [_StudyRow(*row) for row in tuples(query)]


def _matched_studies(
    orders: Sequence[WorklistOrder],
) -> tuple[dict[str, _StudyRow], dict[str, list[_StudyRow]]]:
    uids = sorted({o.study_instance_uid for o in orders if o.study_instance_uid})
    accessions = sorted({o.accession_number for o in orders if o.accession_number})
    by_uid: dict[str, _StudyRow] = {}
    by_accession: dict[str, list[_StudyRow]] = defaultdict(list)
    for part in chunks(uids):
        for row in _study_rows(_study_select().where(Study.study_instance_uid.in_(list(part)))):
            by_uid[row.study_instance_uid] = row
    for part in chunks(accessions):
        query = _study_select().where(Study.accession_number.in_(list(part)))
        for row in _study_rows(query.order_by(Study.id)):  # type: ignore[attr-defined]
            by_accession[row.accession_number].append(row)
    return by_uid, by_accession


def _steps(order_ids: Sequence[int]) -> dict[int, _StepSummary]:
    """The latest MPPS status of each order and the instances its MPPS reported."""
    latest: dict[int, tuple[datetime, int, str]] = {}
    counts: dict[int, int] = {}
    link, step, ref = PerformedProcedureStepOrder, PerformedProcedureStep, PerformedInstance
    for part in chunks(order_ids):
        ids = list(part)
        query = (
            link.select(link.order, step.performed_procedure_step_status, step.updated_at, step.id)
            .join(step)
            .where(link.order.in_(ids))
        )
        for order_id, status, updated_at, step_id in tuples(query):
            key = (updated_at, step_id, status)
            if order_id not in latest or key[:2] > latest[order_id][:2]:
                latest[order_id] = key
        reported = (
            link.select(link.order, pw.fn.COUNT(ref.referenced_sop_instance_uid.distinct()))
            .join(ref, on=(ref.step == link.step))
            .where(link.order.in_(ids))
            .group_by(link.order)
        )
        for order_id, count in tuples(reported):
            counts[order_id] = int(count)
    return {
        order_id: _StepSummary(status, counts.get(order_id, 0))
        for order_id, (_at, _id, status) in latest.items()
    }


def _name_key(name: str) -> str:
    """A person name compared without case and without trailing empty components."""
    return norm_text(name.strip().rstrip("^ =").strip())


def _flags(
    order: WorklistOrder, studies: Sequence[_StudyRow], step: _StepSummary | None
) -> tuple[OrderFlag, ...]:
    flags: list[OrderFlag] = []
    instances = sum(s.instances for s in studies)
    if any(s.patient_id != order.patient_id for s in studies):
        flags.append(OrderFlag.PATIENT_ID_MISMATCH)
    wanted = _name_key(order.patient_name)
    if any(_name_key(s.patient_name) != wanted for s in studies):
        flags.append(OrderFlag.PATIENT_NAME_MISMATCH)
    if step is not None and step.status in _FINAL_MPPS and step.instances != instances:
        flags.append(OrderFlag.MPPS_COUNT_MISMATCH)
    if (
        step is not None
        and step.status == "COMPLETED"
        and order.status == OrderStatus.COMPLETED
        and instances == 0
    ):
        flags.append(OrderFlag.COMPLETED_WITHOUT_IMAGES)
    return tuple(flags)


def _match(
    order: WorklistOrder,
    by_uid: dict[str, _StudyRow],
    by_accession: dict[str, list[_StudyRow]],
) -> tuple[str, list[_StudyRow]]:
    exact = by_uid.get(order.study_instance_uid)
    if exact is not None:
        return "study-instance-uid", [exact]
    if order.accession_number and by_accession.get(order.accession_number):
        return "accession-number", by_accession[order.accession_number]
    return "", []


def order_progress(db: pw.Database, orders: Sequence[WorklistOrder]) -> list[OrderProgress]:
    """Each order with the images received for it, its MPPS and its flags (same order)."""
    with thread_connection(db):
        by_uid, by_accession = _matched_studies(orders)
        steps = _steps([o.id for o in orders])
    out: list[OrderProgress] = []
    for order in orders:
        matched_by, studies = _match(order, by_uid, by_accession)
        step = steps.get(order.id)
        times = [s.updated_at for s in studies if s.updated_at is not None]
        out.append(
            OrderProgress(
                order=order,
                study_instance_uids=tuple(s.study_instance_uid for s in studies),
                matched_by=matched_by,
                series_received=sum(s.series for s in studies),
                instances_received=sum(s.instances for s in studies),
                received_patient_ids=tuple(dict.fromkeys(s.patient_id for s in studies)),
                received_patient_names=tuple(dict.fromkeys(s.patient_name for s in studies)),
                mpps_status=step.status if step else "",
                mpps_instances=step.instances if step else 0,
                flags=_flags(order, studies, step),
                last_received_at=max(times) if times else None,
            )
        )
    return out


def unmatched_studies(
    db: pw.Database, flt: WorklistFilter, limit: int = UNMATCHED_LIMIT
) -> list[UnmatchedStudy]:
    """Archived studies of the filter's dates (Study Date) that match no order at all.

    A study matches an order by Study Instance UID or by a non-empty Accession Number; orders of
    any date count. The modality filter looks at Modalities in Study; the station filter at the
    AE title that sent the images.
    """
    by_uid = WorklistItem.select(WorklistItem.id).where(
        WorklistItem.study_instance_uid == Study.study_instance_uid
    )
    by_accession = WorklistItem.select(WorklistItem.id).where(
        (WorklistItem.accession_number == Study.accession_number)
        & (WorklistItem.accession_number != "")
    )
    terms = [~pw.fn.EXISTS(by_uid), ~pw.fn.EXISTS(by_accession)]
    if flt.date_from:
        terms.append(Study.study_date >= flt.date_from)
    if flt.date_to:
        terms.append(Study.study_date <= flt.date_to)
    if flt.modality:
        matcher = Matcher(is_sqlite(db), _CaseSensitive())
        terms.append(matcher.multi(Study.modalities_in_study, flt.modality))
    if flt.station:
        sent = (
            Instance.select(Instance.id)  # type: ignore[attr-defined]
            .join(Series)
            .where((Series.study == Study.id) & (Instance.calling_ae_title == flt.station))  # type: ignore[attr-defined]
        )
        terms.append(pw.fn.EXISTS(sent))
    condition = terms[0]
    for term in terms[1:]:
        condition = condition & term
    query = (
        Study.select(
            Study.study_instance_uid,
            Patient.patient_id,
            Patient.patient_name,
            Study.accession_number,
            Study.study_date,
            Study.study_description,
            Study.modalities_in_study,
            Study.number_of_study_related_series,
            Study.number_of_study_related_instances,
        )
        .join(Patient)
        .where(condition)
        .order_by(Study.study_date.desc(), Study.study_time.desc(), Study.id.desc())  # type: ignore[attr-defined]
        .limit(limit)
    )
    with thread_connection(db):
        rows = tuples(query)
    return [
        UnmatchedStudy(
            study_instance_uid=uid,
            patient_id=pid,
            patient_name=name,
            accession_number=accession,
            study_date=date,
            study_description=description,
            modalities_in_study=tuple(m for m in (modalities or "").split("\\") if m),
            number_of_study_related_series=int(series or 0),
            number_of_study_related_instances=int(instances or 0),
        )
        for uid, pid, name, accession, date, description, modalities, series, instances in rows
    ]


class _CaseSensitive:
    case_sensitive_names = True


def settle_orders(db: pw.Database, now: datetime, complete_after: float) -> dict[int, OrderStatus]:
    """Move active orders without any MPPS along as their images arrive.

    An order whose studies have images becomes ``in progress``; once no image has arrived for
    ``complete_after`` seconds it becomes ``completed`` (0: never completed this way). Orders
    with an MPPS follow the MPPS only; cancelled orders are left alone.

    Returns:
        ``{order id: new status}`` of the orders changed.
    """
    has_step = PerformedProcedureStepOrder.select(PerformedProcedureStepOrder.id).where(
        PerformedProcedureStepOrder.order == WorklistItem.id
    )
    active = [OrderStatus.SCHEDULED.value, OrderStatus.ARRIVED.value, OrderStatus.IN_PROGRESS.value]
    oldest = (now - timedelta(days=SETTLE_DAYS)).strftime("%Y%m%d")
    query = WorklistItem.select().where(
        WorklistItem.status.in_(active)
        & WorklistItem.cancelled_at.is_null()
        & (WorklistItem.scheduled_procedure_step_start_date >= oldest)
        & ~pw.fn.EXISTS(has_step)
    )
    changes: dict[int, OrderStatus] = {}
    with thread_connection(db):
        orders = [order_from_row(row) for row in query]
        if not orders:
            return changes
        by_uid, by_accession = _matched_studies(orders)
        quiet_since = now - timedelta(seconds=complete_after)
        for order in orders:
            _by, studies = _match(order, by_uid, by_accession)
            if sum(s.instances for s in studies) == 0:
                continue
            last = max((s.updated_at for s in studies if s.updated_at), default=None)
            if complete_after > 0 and last is not None and last <= quiet_since:
                changes[order.id] = OrderStatus.COMPLETED
            elif order.status != OrderStatus.IN_PROGRESS:
                changes[order.id] = OrderStatus.IN_PROGRESS
        with db.atomic():
            for status in set(changes.values()):
                set_status(db, [i for i, s in changes.items() if s == status], status)
    return changes
