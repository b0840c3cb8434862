"""Orders through the worklist service: validated create, edit, cancel, filtered lists and the
CSV import (good rows imported, bad rows reported by line number), on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.worklist_data import BASE, WORKLIST
from tui_pacs.config import Config
from tui_pacs.errors import InvalidOrderError, UnknownOrderError, WorklistError
from tui_pacs.model import OrderFields, OrderStatus, WorklistFilter
from tui_pacs.services.worklist import WorklistService, field_errors
from tui_pacs.store.models import Change


@pytest.fixture
def service(config: Config) -> WorklistService:
    return WorklistService(config)


def test_create_assigns_uid_and_step_id_and_normalises(service: WorklistService) -> None:
    """A new order is scheduled, gets a 2.25 Study Instance UID and an SPS ID, and its date,
    time, sex and modality are normalised."""
    order = service.create(
        replace(
            BASE,
            scheduled_procedure_step_id="",
            scheduled_procedure_step_start_date="2024-05-01",
            scheduled_procedure_step_start_time="9:30".rjust(5, "0"),
            patient_sex="m",
            modality="ct",
            patient_birth_date="1970-01-01",
        )
    )
    assert order.status == OrderStatus.SCHEDULED and not order.cancelled
    assert order.study_instance_uid.startswith("2.25.")
    assert order.scheduled_procedure_step_id == f"SPS{order.id}"
    assert order.scheduled_procedure_step_start_date == "20240501"
    assert order.scheduled_procedure_step_start_time == "093000"
    assert (order.patient_sex, order.modality, order.patient_birth_date) == ("M", "CT", "19700101")
    assert service.get(order.id) == order
    assert Change.select().where(Change.kind == "order", Change.uid == str(order.id)).exists()
    kept = service.create(replace(BASE, study_instance_uid="1.2.3.4"))
    assert kept.study_instance_uid == "1.2.3.4"


def test_every_invalid_field_is_reported_at_once(service: WorklistService) -> None:
    """Dates, times, AE title, sex, lengths, code pairs and required fields are each named."""
    bad = OrderFields(
        patient_name="",
        patient_id="X" * 65,
        patient_birth_date="19701301",
        patient_sex="U",
        modality="C T",
        scheduled_station_ae_title="A" * 17,
        scheduled_procedure_step_start_date="tomorrow",
        scheduled_procedure_step_start_time="2561",
        accession_number="A\\B",
        requested_procedure_code_meaning="Head CT",
        study_instance_uid="1.2.abc",
    )
    errors = field_errors(bad)
    assert set(errors) == {
        "patient_name",
        "patient_id",
        "patient_birth_date",
        "patient_sex",
        "modality",
        "scheduled_station_ae_title",
        "scheduled_procedure_step_start_date",
        "scheduled_procedure_step_start_time",
        "accession_number",
        "requested_procedure_code_value",
        "requested_procedure_coding_scheme_designator",
        "study_instance_uid",
    }
    assert errors["patient_name"] == "required"
    assert "M, F or O" in errors["patient_sex"]
    assert "calendar date" in errors["patient_birth_date"]
    assert "longer than 16" in errors["scheduled_station_ae_title"]
    with pytest.raises(InvalidOrderError) as caught:
        service.create(bad)
    assert caught.value.field_errors == errors
    assert "PatientSex: " in caught.value.message
    assert field_errors(BASE) == {}
    assert service.list_orders() == []


def test_edit_changes_fields_and_keeps_identity(service: WorklistService) -> None:
    """Edit replaces the given fields; a blank UID or SPS ID keeps the current one."""
    order = service.create(BASE)
    edited = service.edit(
        order.id,
        patient_name="DOE^JOHNNY",
        study_instance_uid="",
        scheduled_procedure_step_id="",
        scheduled_procedure_step_start_time="1000",
    )
    assert edited.patient_name == "DOE^JOHNNY"
    assert edited.study_instance_uid == order.study_instance_uid
    assert edited.scheduled_procedure_step_id == order.scheduled_procedure_step_id
    assert edited.scheduled_procedure_step_start_time == "100000"
    form = service.edit(order.id, replace(edited.fields(), modality="mr"))
    assert form.modality == "MR"
    with pytest.raises(InvalidOrderError, match="unknown order field"):
        service.edit(order.id, colour="red")
    with pytest.raises(InvalidOrderError, match="PatientSex"):
        service.edit(order.id, patient_sex="X")
    with pytest.raises(UnknownOrderError):
        service.edit(order.id + 100, patient_name="A")


def test_cancel_and_arrival(service: WorklistService) -> None:
    """Cancel discontinues an order once (idempotent); a cancelled order is not editable; a
    scheduled order can be marked arrived."""
    order = service.create(BASE)
    arrived = service.mark_arrived(order.id)
    assert arrived.status == OrderStatus.ARRIVED
    cancelled = service.cancel(order.id)
    assert cancelled.status == OrderStatus.DISCONTINUED and cancelled.cancelled
    assert service.cancel(order.id) == cancelled
    with pytest.raises(WorklistError, match="cancelled"):
        service.edit(order.id, patient_name="X^Y")
    with pytest.raises(WorklistError, match="not scheduled"):
        service.mark_arrived(order.id)
    with pytest.raises(UnknownOrderError):
        service.cancel(9999)


def test_completed_order_cannot_be_cancelled(service: WorklistService) -> None:
    """A completed order stays completed."""
    from tui_pacs.store.worklist import set_status

    order = service.create(BASE)
    set_status(service.db, [order.id], OrderStatus.COMPLETED)
    with pytest.raises(WorklistError, match="completed"):
        service.cancel(order.id)


def test_list_filters(service: WorklistService) -> None:
    """Lists filter by date range, modality, station, status and patient; sorted by start."""
    made = {name: service.create(fields) for name, fields in WORKLIST}

    def names(**kwargs: object) -> list[str]:
        by_id = {o.id: n for n, o in made.items()}
        return [by_id[o.id] for o in service.list_orders(WorklistFilter(**kwargs))]  # type: ignore[arg-type]

    assert names() == ["doe", "roe", "mr", "ct2", "us"]
    assert names(date_from="20240502", date_to="20240502") == ["mr", "ct2"]
    assert names(date_from="20240502") == ["mr", "ct2", "us"]
    assert names(date_to="20240501") == ["doe", "roe"]
    assert names(modality="CT") == ["doe", "roe", "ct2"]
    assert names(station="MR1") == ["mr"]
    assert names(patient="smith") == ["mr", "us"]
    assert names(patient="*ith^a*") == ["mr"]
    assert names(patient="P4") == ["us"]
    service.cancel(made["roe"].id)
    assert names(statuses=frozenset({OrderStatus.DISCONTINUED})) == ["roe"]
    assert names(statuses=frozenset({OrderStatus.SCHEDULED}), modality="CT") == ["doe", "ct2"]
    assert [o.id for o in service.list_orders(limit=2, offset=1)] == [made["roe"].id, made["mr"].id]


CSV_HEADER = (
    "PatientName,PatientID,PatientSex,AccessionNumber,Modality,ScheduledStationAETitle,"
    "ScheduledProcedureStepStartDate,ScheduledProcedureStepStartTime,"
    "RequestedProcedureDescription,CodeValue,CodingSchemeDesignator,CodeMeaning"
)
CSV_TEXT = "\ufeff" + CSV_HEADER + """
DOE^JOHN,P1,M,A1,CT,CT1,20240501,0930,CT head,CTHD,LOCAL,CT head
ROE^RICHARD,P2,X,A2,CT,CT1,20240501,1015,CT chest,,,

SMITH^ANNA,P3,F,A3,MR,MR1,2024-05-02,08:00,"MR knee,
left",,,
,P4,F,A4,US,US_STATION_NAME_TOO_LONG,20240231,2500,US,,,
WHO^DOCTOR,P5,O,A5,CT,CT1,20240502,,CT,X,,
JONES^AL,P6,M,A6,MR,MR1,2024-05-02,08:00,MR knee,,,
"""


def test_csv_import_reports_bad_rows_by_line(service: WorklistService, tmp_path: Path) -> None:
    """Good rows are imported; each bad row is reported with its line number and every reason
    (blank lines and quoted newlines keep the numbering honest)."""
    path = tmp_path / "orders.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    report = service.import_csv(path)
    assert [o.patient_id for o in report.imported] == ["P1", "P6"]
    first, last = report.imported
    assert (first.requested_procedure_code_value, first.requested_procedure_code_meaning) == (
        "CTHD",
        "CT head",
    )
    assert last.scheduled_procedure_step_start_date == "20240502"
    assert last.scheduled_procedure_step_start_time == "080000"
    assert {e.line: e.reasons for e in report.errors} == {
        3: ("PatientSex: 'X': use M, F or O",),
        5: ("RequestedProcedureDescription: backslashes and control characters are not allowed",),
        7: (
            "PatientName: required",
            "ScheduledStationAETitle: 'US_STATION_NAME_TOO_LONG' is longer than 16 characters",
            "ScheduledProcedureStepStartDate: '20240231' is not a calendar date",
            "ScheduledProcedureStepStartTime: '2500' is not a time of day",
        ),
        8: ("CodingSchemeDesignator: required with a procedure code",),
    }
    assert len(service.list_orders()) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("PatientName,PatientID,Colour\n", "line 1: unknown column(s) Colour"),
        ("PatientName,PatientID\nA,B\n", "required column(s) missing: Modality"),
        (
            "PatientName,PatientName,PatientID,Modality,ScheduledProcedureStepStartDate\n",
            "named twice",
        ),
    ],
)
def test_csv_header_errors(service: WorklistService, text: str, message: str) -> None:
    """A header that cannot be used refuses the whole file, saying why."""
    with pytest.raises(WorklistError) as caught:
        service.import_csv(text)
    assert message in caught.value.message


def test_csv_semicolons_and_extra_values(service: WorklistService) -> None:
    """Semicolon-separated files work; a row with too many values is refused."""
    text = (
        "PatientName;PatientID;Modality;ScheduledProcedureStepStartDate\n"
        "DOE^JOHN;P1;CT;20240501\n"
        "ROE^R;P2;CT;20240501;extra\n"
    )
    report = service.import_csv(text)
    assert len(report.imported) == 1
    assert report.errors[0].line == 3 and "5 values for 4 columns" in report.errors[0].reasons[0]
