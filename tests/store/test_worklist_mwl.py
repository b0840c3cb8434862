"""The Modality Worklist C-FIND engine: every matching key, sequence matching and the return of
only the requested keys, statuses, character sets and bad values; on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydicom.dataset import Dataset

from tests.worklist_data import BASE, WORKLIST
from tui_pacs.config import Config
from tui_pacs.errors import QueryError
from tui_pacs.services.worklist import WorklistService
from tui_pacs.store.mwl import MwlOptions, find_worklist


@pytest.fixture
def service(config: Config) -> WorklistService:
    service = WorklistService(config)
    for _name, fields in WORKLIST:
        service.create(fields)
    return service


def query(top: dict[str, str] | None = None, sps: dict[str, str] | None = None) -> Dataset:
    """A worklist identifier with these top-level and Scheduled Procedure Step keys."""
    ds = Dataset()
    ds.PatientName = ""
    ds.PatientID = ""
    for keyword, value in (top or {}).items():
        setattr(ds, keyword, value)
    item = Dataset()
    item.Modality = ""
    item.ScheduledProcedureStepStartDate = ""
    for keyword, value in (sps or {}).items():
        setattr(item, keyword, value)
    ds.ScheduledProcedureStepSequence = [item]
    return ds


def ids(service: WorklistService, identifier: Dataset, **options: object) -> list[str]:
    matches = find_worklist(identifier, MwlOptions(**options), service.db)  # type: ignore[arg-type]
    return sorted(str(r.PatientID) for r in matches)


#: (top-level keys, step keys, patient IDs matched).
CASES: list[tuple[dict[str, str], dict[str, str], list[str]]] = [
    ({}, {}, ["P1", "P2", "P3", "P4", "P5"]),
    ({}, {"ScheduledStationAETitle": "CT1"}, ["P1", "P2", "P5"]),
    ({}, {"ScheduledStationAETitle": "MR1\\US1"}, ["P3", "P4"]),
    ({}, {"ScheduledStationAETitle": "*1"}, ["P1", "P2", "P3", "P4", "P5"]),
    ({}, {"Modality": "MR"}, ["P3"]),
    ({}, {"ScheduledProcedureStepStartDate": "20240502"}, ["P3", "P5"]),
    ({}, {"ScheduledProcedureStepStartDate": "20240502-"}, ["P3", "P4", "P5"]),
    ({}, {"ScheduledProcedureStepStartDate": "-20240501"}, ["P1", "P2"]),
    ({}, {"ScheduledProcedureStepStartTime": "0900-1200"}, ["P1", "P5"]),
    (
        {},
        {
            "ScheduledProcedureStepStartDate": "20240501-20240502",
            "ScheduledProcedureStepStartTime": "1000-0900",
        },
        ["P2", "P3"],
    ),
    ({}, {"ScheduledPerformingPhysicianName": "who*"}, ["P2"]),
    ({}, {"ScheduledProcedureStepID": "S3"}, ["P3"]),
    ({}, {"ScheduledStationName": "US ROOM"}, ["P4"]),
    ({}, {"ScheduledProcedureStepDescription": "CT head*"}, ["P1", "P2", "P3", "P4", "P5"]),
    ({"PatientName": "doe*"}, {}, ["P1", "P5"]),
    ({"PatientName": "SMITH^ANNA"}, {}, ["P3"]),
    ({"PatientName": "smith*"}, {}, ["P3", "P4"]),
    ({"PatientName": "?OE^*"}, {}, ["P1", "P2", "P5"]),
    ({"PatientID": "P4"}, {}, ["P4"]),
    ({"AccessionNumber": "A*"}, {}, ["P1", "P2", "P3", "P5"]),
    ({"AccessionNumber": "B4"}, {}, ["P4"]),
    ({"RequestedProcedureID": "RP1"}, {}, ["P1", "P2", "P3", "P4", "P5"]),
    ({"PatientSex": "F"}, {}, ["P4", "P5"]),
    ({"RequestedProcedureDescription": "MR*"}, {}, ["P3"]),
]


def test_matching_keys(service: WorklistService) -> None:
    """Each matching key selects its orders (wildcards, lists, open and combined ranges).

    One test for every case: the worklist is made once per database, not once per case.
    """
    for top, sps, expected in CASES:
        assert ids(service, query(top, sps)) == expected, (top, sps)


def test_independent_date_and_time_when_never_combined(service: WorklistService) -> None:
    """With combined matching off, the time range applies on each day on its own."""
    identifier = query(
        {},
        {
            "ScheduledProcedureStepStartDate": "20240501-20240502",
            "ScheduledProcedureStepStartTime": "1000-1500",
        },
    )
    assert ids(service, identifier, combined_datetime=False) == ["P2", "P5"]
    assert ids(service, identifier) == ["P2", "P3", "P5"]


def test_case_sensitive_names_option(service: WorklistService) -> None:
    """Names match without regard to case unless configured otherwise."""
    assert ids(service, query({"PatientName": "doe*"}), case_sensitive_names=True) == []
    assert ids(service, query({"PatientName": "DOE*"}), case_sensitive_names=True) == ["P1", "P5"]


def test_only_requested_keys_are_returned(service: WorklistService) -> None:
    """A response holds the requested top-level keys and, inside the sequence item, only the
    requested item keys; unknown keys come back empty; codes come back when asked."""
    identifier = query(
        {"PatientID": "P1", "AccessionNumber": "", "ReferringPhysicianName": ""},
        {"ScheduledStationAETitle": "", "ScheduledProcedureStepStatus": ""},
    )
    code = Dataset()
    code.CodeValue = ""
    identifier.RequestedProcedureCodeSequence = [code]
    identifier.ReferencedStudySequence = []
    (rsp,) = find_worklist(identifier, MwlOptions(), service.db)
    assert sorted(e.keyword for e in rsp) == [
        "AccessionNumber",
        "PatientID",
        "PatientName",
        "ReferencedStudySequence",
        "ReferringPhysicianName",
        "RequestedProcedureCodeSequence",
        "ScheduledProcedureStepSequence",
    ]
    assert "SpecificCharacterSet" not in rsp
    item = rsp.ScheduledProcedureStepSequence[0]
    assert sorted(e.keyword for e in item) == [
        "Modality",
        "ScheduledProcedureStepStartDate",
        "ScheduledProcedureStepStatus",
        "ScheduledStationAETitle",
    ]
    assert (item.Modality, item.ScheduledStationAETitle) == ("CT", "CT1")
    assert item.ScheduledProcedureStepStatus == "SCHEDULED"
    assert rsp.RequestedProcedureCodeSequence == []  # the order has no code
    assert rsp["ReferringPhysicianName"].is_empty and rsp.ReferencedStudySequence == []


def test_zero_length_item_returns_the_whole_step(service: WorklistService) -> None:
    """A Scheduled Procedure Step Sequence without item keys returns every key we hold."""
    service.create(
        replace(
            BASE,
            patient_id="P9",
            requested_procedure_code_value="CTHD",
            requested_procedure_coding_scheme_designator="LOCAL",
            requested_procedure_code_meaning="CT head",
        )
    )
    identifier = Dataset()
    identifier.PatientID = "P9"
    identifier.ScheduledProcedureStepSequence = [Dataset()]
    identifier.RequestedProcedureCodeSequence = []
    (rsp,) = find_worklist(identifier, MwlOptions(), service.db)
    item = rsp.ScheduledProcedureStepSequence[0]
    assert item.ScheduledProcedureStepStartTime == "093000"
    assert item.ScheduledPerformingPhysicianName == "HOUSE^GREGORY"
    assert item.ScheduledStationName == "CT ROOM 1" and item.ScheduledProcedureStepID == "S1"
    code = rsp.RequestedProcedureCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (
        "CTHD",
        "LOCAL",
        "CT head",
    )


def test_statuses(service: WorklistService) -> None:
    """Only active orders are listed by default; a status key selects by status."""
    first = service.list_orders()[0]
    service.cancel(first.id)
    assert "P1" not in ids(service, query())
    cancelled = query({}, {"ScheduledProcedureStepStatus": "DISCONTINUED"})
    assert ids(service, cancelled) == ["P1"]
    with pytest.raises(QueryError, match="ScheduledProcedureStepStatus"):
        find_worklist(query({}, {"ScheduledProcedureStepStatus": "LOST"}), MwlOptions(), service.db)


def test_character_sets(service: WorklistService) -> None:
    """Responses use the query's character set, or UTF-8 when a value does not fit it."""
    service.create(replace(BASE, patient_id="P8", patient_name="MÜLLER^JÖRG"))
    service.create(replace(BASE, patient_id="P7", patient_name="Ἀριστοτέλης"))
    latin1 = query({"PatientID": "P8", "SpecificCharacterSet": "ISO_IR 100"})
    (rsp,) = find_worklist(latin1, MwlOptions(), service.db)
    assert rsp.SpecificCharacterSet == "ISO_IR 100" and rsp.PatientName == "MÜLLER^JÖRG"
    greek = query({"PatientID": "P7", "SpecificCharacterSet": "ISO_IR 100"})
    (rsp,) = find_worklist(greek, MwlOptions(), service.db)
    assert rsp.SpecificCharacterSet == "ISO_IR 192"
    (rsp,) = find_worklist(query({"PatientID": "P8"}), MwlOptions(), service.db)
    assert rsp.SpecificCharacterSet == "ISO_IR 192"
    assert ids(service, query({"PatientName": "müller*"})) == ["P8"]


def test_bad_values_and_unsupported_keys(service: WorklistService) -> None:
    """A malformed range is a QueryError; matching on a key we do not hold warns (0xFF01); a
    Query/Retrieve Level is ignored; the result cap truncates."""
    with pytest.raises(QueryError):
        find_worklist(
            query({}, {"ScheduledProcedureStepStartDate": "2024-05"}), MwlOptions(), service.db
        )
    matches = find_worklist(query({"AdmissionID": "X"}), MwlOptions(), service.db)
    assert matches.warning and len(list(matches)) == 5
    with_level = find_worklist(query({"QueryRetrieveLevel": "STUDY"}), MwlOptions(), service.db)
    responses = list(with_level)
    assert not with_level.warning and len(responses) == 5
    assert "QueryRetrieveLevel" not in responses[0]
    capped = find_worklist(query(), MwlOptions(max_results=2), service.db)
    assert len(list(capped)) == 2 and capped.truncated
