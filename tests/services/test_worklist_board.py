"""The tech desk board: orders matched to archived images (Study Instance UID, then Accession
Number), MPPS status and counts, every flag, unmatched studies, image-driven settling, and a
fixed number of queries however many orders; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tests.store.synthetic import new_uid, open_ingestor
from tests.worklist_data import BASE, archive_study, mpps_create, mpps_final
from tui_pacs.config import Config
from tui_pacs.model import OrderFlag, OrderStatus, WorklistFilter
from tui_pacs.net.mpps_scp import ProcedureStepRequest
from tui_pacs.services.ingest import Ingestor
from tui_pacs.services.worklist import WorklistService, today
from tui_pacs.store.models import utcnow

DAY = WorklistFilter(date_from="20240501", date_to="20240501")


@pytest.fixture
def ingestor(config: Config) -> Iterator[Ingestor]:
    with open_ingestor(config) as ingestor:
        yield ingestor


@pytest.fixture
def service(config: Config, ingestor: Ingestor) -> WorklistService:
    return WorklistService(config, ingestor.db)


def _mpps(service: WorklistService, ds: Any, uid: str | None = None) -> str:
    return service.create_step(ProcedureStepRequest(uid or new_uid(), ds, "CT1"))


def _end(service: WorklistService, uid: str, ds: Any) -> None:
    service.update_step(ProcedureStepRequest(uid, ds, "CT1"))


def test_match_by_study_uid_then_accession(service: WorklistService, ingestor: Ingestor) -> None:
    """Images with the order's Study Instance UID match it; without, its accession number does;
    counts are series and instances of the matched studies."""
    exact = service.create(BASE)
    by_acc = service.create(replace(BASE, accession_number="A2", scheduled_procedure_step_id="S2"))
    waiting = service.create(replace(BASE, accession_number="A3", scheduled_procedure_step_id="S3"))
    archive_study(ingestor, study_uid=exact.study_instance_uid, series=2, per_series=2)
    archive_study(ingestor, study_uid=new_uid(), accession="A2", per_series=3)
    board = service.board(DAY)
    rows = {p.order.id: p for p in board.orders}
    assert rows[exact.id].matched_by == "study-instance-uid"
    assert (rows[exact.id].series_received, rows[exact.id].instances_received) == (2, 4)
    assert rows[exact.id].study_instance_uids == (exact.study_instance_uid,)
    assert rows[by_acc.id].matched_by == "accession-number"
    assert (rows[by_acc.id].series_received, rows[by_acc.id].instances_received) == (1, 3)
    assert rows[waiting.id].matched_by == "" and rows[waiting.id].instances_received == 0
    assert all(not p.flags for p in board.orders)
    assert board.unmatched_studies == () and board.flagged == 0
    assert rows[exact.id].last_received_at is not None


def test_patient_flags(service: WorklistService, ingestor: Ingestor) -> None:
    """Images whose Patient ID or name disagree with their order are flagged; a name that
    differs only in case or trailing empty components is not. (The index keeps one name per
    Patient ID: the name of the first images received.)"""
    same = service.create(BASE)
    other_id = service.create(replace(BASE, accession_number="A2"))
    other_name = service.create(replace(BASE, accession_number="A3", patient_id="P5"))
    archive_study(ingestor, study_uid=same.study_instance_uid, patient_name="Doe^John^^")
    archive_study(ingestor, study_uid=other_id.study_instance_uid, patient_id="P9")
    archive_study(
        ingestor, study_uid=other_name.study_instance_uid, patient_id="P5", patient_name="DOE^JANE"
    )
    rows = {p.order.id: p for p in service.board(DAY).orders}
    assert rows[same.id].flags == ()
    assert rows[other_id.id].flags == (OrderFlag.PATIENT_ID_MISMATCH,)
    assert rows[other_id.id].received_patient_ids == ("P9",)
    assert rows[other_name.id].flags == (OrderFlag.PATIENT_NAME_MISMATCH,)
    assert rows[other_name.id].received_patient_names == ("DOE^JANE",)


def test_mpps_status_and_count_flags(service: WorklistService, ingestor: Ingestor) -> None:
    """The board shows each order's MPPS status; a finished MPPS reporting another number of
    instances than received is flagged, and so is an order MPPS completed with no image."""
    counted = service.create(BASE)
    short = service.create(replace(BASE, accession_number="A2"))
    empty = service.create(replace(BASE, accession_number="A3"))
    running = service.create(replace(BASE, accession_number="A4"))
    refs = archive_study(ingestor, study_uid=counted.study_instance_uid, per_series=2)
    short_refs = archive_study(ingestor, study_uid=short.study_instance_uid, per_series=2)
    for order, final in (
        (counted, mpps_final(instances=refs)),
        (short, mpps_final(instances=[*short_refs, ("", new_uid())])),
        (empty, mpps_final(instances=[("", new_uid())])),
    ):
        uid = _mpps(service, mpps_create(study_uid=order.study_instance_uid))
        _end(service, uid, final)
    _mpps(service, mpps_create(study_uid=running.study_instance_uid))
    rows = {p.order.id: p for p in service.board(DAY).orders}
    assert (rows[counted.id].mpps_status, rows[counted.id].mpps_instances) == ("COMPLETED", 2)
    assert rows[counted.id].order.status == OrderStatus.COMPLETED
    assert rows[counted.id].flags == ()
    assert rows[short.id].flags == (OrderFlag.MPPS_COUNT_MISMATCH,)
    assert rows[short.id].mpps_instances == 3 and rows[short.id].instances_received == 2
    assert rows[empty.id].flags == (
        OrderFlag.MPPS_COUNT_MISMATCH,
        OrderFlag.COMPLETED_WITHOUT_IMAGES,
    )
    assert rows[running.id].mpps_status == "IN PROGRESS"
    assert rows[running.id].order.status == OrderStatus.IN_PROGRESS
    assert rows[running.id].flags == ()
    steps = service.performed_steps(short.id)
    assert [(s.status, s.instances, s.order_ids) for s in steps] == [("COMPLETED", 3, (short.id,))]


def test_discontinued_mpps(service: WorklistService, ingestor: Ingestor) -> None:
    """A discontinued MPPS discontinues its order and keeps the reason; no completion flag."""
    order = service.create(BASE)
    uid = _mpps(service, mpps_create(study_uid=order.study_instance_uid))
    _end(service, uid, mpps_final("DISCONTINUED"))
    row = service.board(DAY).orders[0]
    assert row.order.status == OrderStatus.DISCONTINUED and row.mpps_status == "DISCONTINUED"
    assert row.flags == ()
    assert (
        service.performed_steps()[0].discontinuation_reason == "Incorrect worklist entry selected"
    )


def test_unmatched_studies(service: WorklistService, ingestor: Ingestor) -> None:
    """Studies of the day that match no order (by UID or accession, orders of any date) are
    listed, narrowed by modality and by the station that sent them."""
    order = service.create(replace(BASE, scheduled_procedure_step_start_date="20240430"))
    archive_study(ingestor, study_uid=order.study_instance_uid)
    archive_study(ingestor, study_uid=new_uid(), accession="A1")  # the order's accession
    stray_ct = new_uid()
    archive_study(ingestor, study_uid=stray_ct, accession="ZZ", patient_id="P7")
    stray_mr = new_uid()
    archive_study(ingestor, study_uid=stray_mr, modality="MR", calling="MR1")
    archive_study(ingestor, study_uid=new_uid(), study_date="20240502")
    board = service.board(DAY)
    assert board.orders == ()
    assert {s.study_instance_uid for s in board.unmatched_studies} == {stray_ct, stray_mr}
    assert board.flagged == 2
    ct = service.board(replace(DAY, modality="CT")).unmatched_studies
    assert [(s.study_instance_uid, s.patient_id, s.modalities_in_study) for s in ct] == [
        (stray_ct, "P7", ("CT",))
    ]
    by_station = service.board(replace(DAY, station="MR1")).unmatched_studies
    assert [s.study_instance_uid for s in by_station] == [stray_mr]


def test_settle_moves_orders_without_mpps(service: WorklistService, ingestor: Ingestor) -> None:
    """Images make an order in progress; quiet for complete_after seconds, it is completed.
    Orders with an MPPS, cancelled ones, old ones and ones without images are left alone."""
    todays = replace(BASE, scheduled_procedure_step_start_date=today())
    plain = service.create(todays)
    with_mpps = service.create(replace(todays, accession_number="A2"))
    cancelled = service.create(replace(todays, accession_number="A3"))
    idle = service.create(replace(todays, accession_number="A4"))
    old = service.create(replace(BASE, accession_number="A6"))
    archive_study(ingestor, study_uid=old.study_instance_uid)
    for order in (plain, with_mpps, cancelled):
        archive_study(ingestor, study_uid=order.study_instance_uid)
    _mpps(service, mpps_create(study_uid=with_mpps.study_instance_uid))
    service.cancel(cancelled.id)
    now = utcnow()
    assert service.settle(now) == {plain.id: OrderStatus.IN_PROGRESS}
    assert service.settle(now) == {}
    later = now + timedelta(seconds=service.config.worklist_complete_after + 1)
    assert service.settle(later) == {plain.id: OrderStatus.COMPLETED}
    statuses = {o.id: o.status for o in service.list_orders()}
    assert statuses == {
        plain.id: OrderStatus.COMPLETED,
        with_mpps.id: OrderStatus.IN_PROGRESS,
        cancelled.id: OrderStatus.DISCONTINUED,
        idle.id: OrderStatus.SCHEDULED,
        old.id: OrderStatus.SCHEDULED,
    }
    never = WorklistService(replace(service.config, worklist_complete_after=0), service.db)
    other = service.create(replace(todays, accession_number="A5"))
    archive_study(ingestor, study_uid=other.study_instance_uid)
    assert never.settle(later + timedelta(days=1)) == {other.id: OrderStatus.IN_PROGRESS}


def test_board_query_count_does_not_grow(
    service: WorklistService, ingestor: Ingestor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The board costs the same number of statements for 3 orders as for 30 (no N+1)."""
    for n in range(30):
        order = service.create(replace(BASE, accession_number=f"A{n}", patient_id=f"P{n}"))
        if n % 3 == 0:
            archive_study(ingestor, study_uid=order.study_instance_uid, patient_id=f"P{n}")
        if n % 5 == 0:
            _mpps(service, mpps_create(study_uid=order.study_instance_uid))
    db = service.db
    statements: list[str] = []
    original = db.execute_sql

    def counting(sql: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(sql)
        return original(sql, *args, **kwargs)

    monkeypatch.setattr(db, "execute_sql", counting)
    big = service.board(DAY)
    many = len(statements)
    statements.clear()
    small = service.board(replace(DAY, patient="P1"))
    assert len(big.orders) == 30 and 1 <= len(small.orders) < 30
    assert many == len(statements) <= 10


def test_board_queries_use_indexes(sqlite_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statement of the board finds its rows through an index (SQLite's query plan
    shows no table scan): today's studies by Study Date, orders by start date, studies by
    Study Instance UID and Accession Number, MPPS by order (SQLite only: the plan is its own)."""
    with open_ingestor(sqlite_config) as ingestor:
        service = WorklistService(sqlite_config, ingestor.db)
        for n in range(4):
            order = service.create(replace(BASE, accession_number=f"A{n}"))
            archive_study(ingestor, study_uid=order.study_instance_uid, accession=f"A{n}")
            _mpps(service, mpps_create(study_uid=order.study_instance_uid))
        archive_study(ingestor, study_uid=new_uid(), accession="ZZ")
        db = service.db
        statements: list[tuple[str, Any]] = []
        original = db.execute_sql

        def recording(sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
            statements.append((sql, params))
            return original(sql, params, *args, **kwargs)

        monkeypatch.setattr(db, "execute_sql", recording)
        board = service.board(DAY)
        monkeypatch.undo()
        assert len(board.orders) == 4 and len(board.unmatched_studies) == 1
        assert len(statements) >= 5
        for sql, params in statements:
            plan = [row[3] for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params)]
            assert not [step for step in plan if step.startswith("SCAN")], (sql, plan)
