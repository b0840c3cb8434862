"""Orders in the index: the ``worklist_item`` rows (Scheduled Procedure Steps) and their listing.

Values reaching this module are already validated by the services layer; this module stores
them, assigns what is missing (the Scheduled Procedure Step ID), appends to the change feed and
turns rows into :class:`~tui_pacs.model.WorklistOrder` values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import peewee as pw

from tui_pacs.errors import UnknownOrderError
from tui_pacs.model import OrderFields, OrderStatus, WorklistFilter, WorklistOrder
from tui_pacs.store.db import is_sqlite, thread_connection
from tui_pacs.store.header import norm_text
from tui_pacs.store.matching import WILDCARDS, Matcher
from tui_pacs.store.models import Change, WorklistItem, utcnow

#: Change feed kind of every order change (uid: the order id).
CHANGE_KIND = "order"
#: Rows per ``IN (...)`` list (SQLite's bound-parameter limit is 999 on old builds).
CHUNK = 500

#: Order fields that are person names, with their case-folded column.
NAME_FIELDS = {
    "patient_name": "patient_name_norm",
    "scheduled_performing_physician_name": "scheduled_performing_physician_name_norm",
}


def tuples(query: Any) -> list[tuple[Any, ...]]:
    """The rows of a select as plain tuples (typed loosely: peewee's stubs type them as models)."""
    return list(query.tuples())


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def order_from_row(row: WorklistItem) -> WorklistOrder:
    """The :class:`WorklistOrder` of a row."""
    return WorklistOrder(
        id=row.id,
        patient_name=row.patient_name,
        patient_id=row.patient_id,
        patient_birth_date=row.patient_birth_date,
        patient_sex=row.patient_sex,
        accession_number=row.accession_number,
        requested_procedure_id=row.requested_procedure_id,
        requested_procedure_description=row.requested_procedure_description,
        requested_procedure_code_value=row.requested_procedure_code_value,
        requested_procedure_coding_scheme_designator=row.requested_procedure_coding_scheme_designator,
        requested_procedure_code_meaning=row.requested_procedure_code_meaning,
        study_instance_uid=row.study_instance_uid,
        scheduled_procedure_step_id=row.scheduled_procedure_step_id,
        scheduled_procedure_step_description=row.scheduled_procedure_step_description,
        modality=row.modality,
        scheduled_station_ae_title=row.scheduled_station_ae_title,
        scheduled_station_name=row.scheduled_station_name,
        scheduled_procedure_step_start_date=row.scheduled_procedure_step_start_date,
        scheduled_procedure_step_start_time=row.scheduled_procedure_step_start_time,
        scheduled_performing_physician_name=row.scheduled_performing_physician_name,
        status=OrderStatus(row.status),
        cancelled=row.cancelled_at is not None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _columns(fields: OrderFields) -> dict[str, object]:
    values: dict[str, object] = {
        name: getattr(fields, name) for name in OrderFields.__dataclass_fields__
    }
    for name, norm in NAME_FIELDS.items():
        values[norm] = norm_text(str(values[name]))
    return values


def _insert(fields: OrderFields, now: datetime) -> WorklistItem:
    row = WorklistItem.create(**_columns(fields), created_at=now, updated_at=now)
    if not row.scheduled_procedure_step_id:
        # Unique within the archive, short enough for SH (16).
        row.scheduled_procedure_step_id = f"SPS{row.id}"
        WorklistItem.update(scheduled_procedure_step_id=row.scheduled_procedure_step_id).where(
            WorklistItem.id == row.id
        ).execute()
    Change.create(kind=CHANGE_KIND, uid=str(row.id), at=now)
    return row


def insert_orders(db: pw.Database, orders: Sequence[OrderFields]) -> list[WorklistOrder]:
    """Store new orders in one transaction (status scheduled); returns them as stored."""
    now = utcnow()
    with thread_connection(db), db.atomic():
        rows = [_insert(fields, now) for fields in orders]
    return [order_from_row(row) for row in rows]


def get_order(db: pw.Database, order_id: int) -> WorklistOrder:
    """The order with this id.

    Raises:
        UnknownOrderError: There is none.
    """
    with thread_connection(db):
        row = WorklistItem.get_or_none(WorklistItem.id == order_id)
    if row is None:
        raise UnknownOrderError(f"no order has id {order_id}")
    return order_from_row(row)


def update_order(db: pw.Database, order_id: int, fields: OrderFields) -> WorklistOrder:
    """Replace the editable fields of an order.

    Raises:
        UnknownOrderError: There is none.
    """
    now = utcnow()
    with thread_connection(db), db.atomic():
        count = (
            WorklistItem.update(**_columns(fields), updated_at=now)
            .where(WorklistItem.id == order_id)
            .execute()
        )
        if not count:
            raise UnknownOrderError(f"no order has id {order_id}")
        Change.create(kind=CHANGE_KIND, uid=str(order_id), at=now)
        row = WorklistItem.get_by_id(order_id)
    return order_from_row(row)


def set_status(
    db: pw.Database, order_ids: Iterable[int], status: OrderStatus, *, cancel: bool = False
) -> None:
    """Move orders to ``status`` (inside the caller's transaction if there is one).

    Args:
        cancel: Also mark them cancelled at the desk (now).
    """
    ids = list(order_ids)
    if not ids:
        return
    now = utcnow()
    with thread_connection(db), db.atomic():
        values: dict[str, object] = {"status": status.value, "updated_at": now}
        if cancel:
            values["cancelled_at"] = now
        for part in chunks(ids):
            WorklistItem.update(**values).where(WorklistItem.id.in_(list(part))).execute()
        for order_id in ids:
            Change.create(kind=CHANGE_KIND, uid=str(order_id), at=now)


def filter_condition(db: pw.Database, flt: WorklistFilter, case_sensitive_names: bool) -> Any:
    """The WHERE clause of :func:`list_orders` (also used by the board)."""
    w = WorklistItem
    terms: list[Any] = []
    if flt.date_from:
        terms.append(w.scheduled_procedure_step_start_date >= flt.date_from)
    if flt.date_to:
        terms.append(w.scheduled_procedure_step_start_date <= flt.date_to)
    if flt.modality:
        terms.append(w.modality == flt.modality)
    if flt.station:
        terms.append(w.scheduled_station_ae_title == flt.station)
    if flt.statuses:
        terms.append(w.status.in_(sorted(s.value for s in flt.statuses)))
    if flt.patient:
        text = flt.patient.strip()
        matcher = Matcher(is_sqlite(db), _NameOptions(case_sensitive_names))
        column = w.patient_name if case_sensitive_names else w.patient_name_norm
        value = text if case_sensitive_names else norm_text(text)
        if not any(c in value for c in WILDCARDS):
            value += "*"  # a prefix, as the console's study filter does
        terms.append(matcher.pattern(column, value) | (w.patient_id == text))
    if not terms:
        return pw.SQL("1 = 1")
    condition = terms[0]
    for term in terms[1:]:
        condition = condition & term
    return condition


class _NameOptions:
    def __init__(self, case_sensitive: bool) -> None:
        self.case_sensitive_names = case_sensitive


#: Listing order: by scheduled start, then by id (stable).
ORDER_BY = (
    WorklistItem.scheduled_procedure_step_start_date,
    WorklistItem.scheduled_procedure_step_start_time,
    WorklistItem.id,
)


def list_orders(
    db: pw.Database,
    flt: WorklistFilter,
    *,
    case_sensitive_names: bool = False,
    limit: int = 0,
    offset: int = 0,
) -> list[WorklistOrder]:
    """Orders matching ``flt``, by scheduled start (``limit`` 0: all)."""
    query = WorklistItem.select().where(filter_condition(db, flt, case_sensitive_names))
    query = query.order_by(*ORDER_BY)
    if limit:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    with thread_connection(db):
        return [order_from_row(row) for row in query]


def orders_by_id(db: pw.Database, order_ids: Iterable[int]) -> dict[int, WorklistOrder]:
    """The orders with these ids (unknown ids are left out)."""
    ids = sorted(set(order_ids))
    out: dict[int, WorklistOrder] = {}
    with thread_connection(db):
        for part in chunks(ids):
            for row in WorklistItem.select().where(WorklistItem.id.in_(list(part))):
                out[row.id] = order_from_row(row)
    return out
