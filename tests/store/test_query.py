"""The C-FIND matching engine on SQLite and PostgreSQL: every PS3.4 C.2.2.2 rule, each level and
root, the hierarchy checks, character sets, the result cap and streaming."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace

import peewee as pw
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from tests.find_data import ARCHIVE, encoded, studies, uid
from tui_pacs.config import Config
from tui_pacs.errors import IdentifierMismatchError, QueryError
from tui_pacs.services.ingest import Ingestor
from tui_pacs.services.query import QueryService
from tui_pacs.store.matching import parse_range
from tui_pacs.store.qr_keys import InformationModel
from tui_pacs.store.query import FindStream, QueryOptions, find

PATIENT_ROOT = InformationModel.PATIENT_ROOT
STUDY_ROOT = InformationModel.STUDY_ROOT
OPTIONS = QueryOptions(retrieve_ae_title="TEST_PACS")
S = {inst.study: inst.study_uid for inst in ARCHIVE}


@pytest.fixture
def db(config: Config) -> Iterator[pw.Database]:
    """The test archive indexed in a fresh database (SQLite, then PostgreSQL)."""
    ingestor = Ingestor(config)
    for inst in ARCHIVE:
        ingestor.store_bytes(encoded(inst))
    ingestor.close()
    yield ingestor.db


def ident(level: str, charset: str | None = None, **keys: object) -> Dataset:
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def encode(ds: Dataset, implicit: bool = True, little: bool = True) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, ds)
    return fp.getvalue()


def decode(data: bytes, implicit: bool = True, little: bool = True) -> Dataset:
    return read_dataset(io.BytesIO(data), implicit, little)


def run(
    db: pw.Database,
    identifier: Dataset,
    model: InformationModel = STUDY_ROOT,
    options: QueryOptions = OPTIONS,
    implicit: bool = True,
    little: bool = True,
) -> tuple[FindStream, list[Dataset], list[bytes]]:
    """Send ``identifier`` over the wire, run it, and decode the responses as an SCU would."""
    received = decode(encode(identifier, implicit, little), implicit, little)
    stream = find(received, model, options, db, implicit_vr=implicit, little_endian=little)
    raw: list[bytes] = []
    try:
        for response in stream:
            raw.append(encode(response, implicit, little))
    finally:
        stream.close()
    return stream, [decode(r, implicit, little) for r in raw], raw


def values(responses: list[Dataset], keyword: str) -> list[str]:
    return sorted(str(r.get(keyword, "")) for r in responses)


def study_uids(db: pw.Database, options: QueryOptions = OPTIONS, **keys: object) -> list[str]:
    _, responses, _ = run(db, ident("STUDY", StudyInstanceUID="", **keys), options=options)
    return sorted(r.StudyInstanceUID for r in responses)


def uids(*studies_: int) -> list[str]:
    return sorted(S[n] for n in studies_)


# -- levels and roots ----------------------------------------------------------------------------


def test_patient_root_patient_level_lists_each_patient_with_counts(db: pw.Database) -> None:
    """PATIENT level (Patient Root): one response per patient, related counts from the index."""
    _, responses, _ = run(
        db,
        ident("PATIENT", PatientID="", PatientName="", NumberOfPatientRelatedStudies=""),
        PATIENT_ROOT,
    )
    assert values(responses, "PatientID") == ["P1", "P2", "P3", "P4"]
    counts = {r.PatientID: int(r.NumberOfPatientRelatedStudies) for r in responses}
    assert counts == {"P1": 1, "P2": 2, "P3": 1, "P4": 1}


def test_study_level_in_both_roots(db: pw.Database) -> None:
    """STUDY level: Study Root needs nothing above; Patient Root needs the Patient ID."""
    assert study_uids(db) == uids(1, 2, 3, 4, 5)
    _, responses, _ = run(db, ident("STUDY", PatientID="P2", StudyInstanceUID=""), PATIENT_ROOT)
    assert values(responses, "StudyInstanceUID") == uids(2, 3)


def test_series_level_returns_series_of_one_study(db: pw.Database) -> None:
    """SERIES level: the series of the given study, with modality, number and instance count."""
    _, responses, _ = run(
        db,
        ident(
            "SERIES",
            StudyInstanceUID=S[1],
            SeriesInstanceUID="",
            Modality="",
            SeriesNumber="",
            NumberOfSeriesRelatedInstances="",
        ),
    )
    got = sorted(
        (r.Modality, int(r.SeriesNumber), int(r.NumberOfSeriesRelatedInstances)) for r in responses
    )
    assert got == [("CT", 1, 2), ("SR", 2, 1)]


def test_image_level_in_patient_root(db: pw.Database) -> None:
    """IMAGE level (Patient Root): instances of one series with SOP class, number, rows, columns."""
    _, responses, _ = run(
        db,
        ident(
            "IMAGE",
            PatientID="P1",
            StudyInstanceUID=S[1],
            SeriesInstanceUID=uid(1, 1),
            SOPInstanceUID="",
            SOPClassUID="",
            InstanceNumber="",
            Rows="",
            Columns="",
        ),
        PATIENT_ROOT,
    )
    assert sorted(int(r.InstanceNumber) for r in responses) == [1, 2]
    assert {(r.Rows, r.Columns) for r in responses} == {(64, 32)}
    assert values(responses, "SOPInstanceUID") == [uid(1, 1, 1), uid(1, 1, 2)]


def test_study_level_optional_keys_from_the_index(db: pw.Database) -> None:
    """Optional study keys people use come back from the index (counts, modalities, SOP classes)."""
    _, responses, _ = run(
        db,
        ident(
            "STUDY",
            StudyInstanceUID=S[1],
            ModalitiesInStudy="",
            SOPClassesInStudy="",
            NumberOfStudyRelatedSeries="",
            NumberOfStudyRelatedInstances="",
            ReferringPhysicianName="",
            StudyDescription="",
            PatientBirthDate="",
            PatientSex="",
        ),
    )
    (r,) = responses
    assert list(r.ModalitiesInStudy) == ["CT", "SR"]
    assert len(r.SOPClassesInStudy) == 2
    assert (int(r.NumberOfStudyRelatedSeries), int(r.NumberOfStudyRelatedInstances)) == (2, 3)
    assert (str(r.ReferringPhysicianName), r.StudyDescription) == ("House^Gregory", "CT HEAD")
    assert (r.PatientBirthDate, r.PatientSex) == ("19700101", "M")


# -- matching rules ------------------------------------------------------------------------------


def test_single_value_matching_is_exact_and_case_sensitive_for_non_names(db: pw.Database) -> None:
    """Single value matching: exact, and case-sensitive outside person names (C.2.2.2.1)."""
    assert study_uids(db, AccessionNumber="ACC003") == uids(3)
    assert study_uids(db, StudyDescription="CT HEAD") == uids(1)
    assert study_uids(db, StudyDescription="ct head") == []
    assert study_uids(db, PatientID="P2") == uids(2, 3)


def test_list_of_uid_matching(db: pw.Database) -> None:
    """List of UID matching: backslash-separated UIDs match any of them (C.2.2.2.2)."""
    _, responses, _ = run(db, ident("STUDY", StudyInstanceUID=[S[1], S[4], uid(99)]))
    assert values(responses, "StudyInstanceUID") == uids(1, 4)


def test_universal_matching_returns_every_entity_and_the_value(db: pw.Database) -> None:
    """Universal matching: a zero-length value or a lone * matches all and returns the value."""
    _, responses, _ = run(db, ident("STUDY", StudyInstanceUID="", AccessionNumber="*"))
    assert values(responses, "AccessionNumber") == [f"ACC00{i}" for i in range(1, 6)]


def test_wildcards_on_person_names_ignore_case_by_default(db: pw.Database) -> None:
    """Wildcard matching: * and ? on names, case-insensitive by default (C.2.2.2.4)."""
    assert study_uids(db, PatientName="doe*") == uids(2, 3, 5)
    assert study_uids(db, PatientName="D?E^J*") == uids(2, 3, 5)
    assert study_uids(db, PatientName="doe^john") == uids(2, 3)
    assert study_uids(db, PatientName="*^HANS") == uids(1)
    assert study_uids(db, PatientName="mül*") == uids(1)


def test_person_names_case_sensitive_when_configured(db: pw.Database) -> None:
    """With case-sensitive names configured, DOE* and Doe* find different patients."""
    options = replace(OPTIONS, case_sensitive_names=True)
    assert study_uids(db, options, PatientName="Doe*") == uids(2, 3)
    assert study_uids(db, options, PatientName="DOE*") == uids(5)
    assert study_uids(db, options, PatientName="doe^john") == []


def test_wildcards_on_other_text_are_case_sensitive(db: pw.Database) -> None:
    """Wildcards on non-name text: case-sensitive, anywhere in the value, ? is one character."""
    assert study_uids(db, StudyDescription="CT*") == uids(1, 3, 4)
    assert study_uids(db, StudyDescription="*he*") == []
    assert study_uids(db, StudyDescription="*HE*") == uids(1, 3)
    assert study_uids(db, AccessionNumber="ACC00?") == uids(1, 2, 3, 4, 5)
    assert study_uids(db, AccessionNumber="ACC0?") == []


def test_wildcard_characters_of_sql_are_literals(db: pw.Database) -> None:
    """SQL pattern characters (% _ [) in a value are literals, not wildcards."""
    assert study_uids(db, StudyDescription="CT%") == []
    assert study_uids(db, AccessionNumber="ACC_0*") == []
    assert study_uids(db, StudyDescription="[C]T*") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20200101", (1,)),
        ("20200101-20200215", (1, 2)),
        ("-20200101", (1, 4)),
        ("20200215-", (2, 3)),
        ("20190101-20191231", (4,)),
        ("2020.01.01", (1,)),
    ],
)
def test_date_range_matching(db: pw.Database, value: str, expected: tuple[int, ...]) -> None:
    """DA range matching incl. open ranges; studies without a date never match a range."""
    assert study_uids(db, StudyDate=value) == uids(*expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("101500", (1,)),
        ("1000-1100", (1,)),
        ("10", (1,)),
        ("-0900", (3,)),
        ("2300-", (2, 4)),
        ("23:15-23:59", (2, 4)),
        ("2359-", (4,)),
    ],
)
def test_time_range_matching(db: pw.Database, value: str, expected: tuple[int, ...]) -> None:
    """TM range matching: open ranges, partial times reach the end of their precision."""
    assert study_uids(db, StudyTime=value) == uids(*expected)


def test_combined_date_time_range_matching(db: pw.Database) -> None:
    """C.2.2.2.5.1: a date range with a time range is one date-time range when combined."""
    keys = {"StudyDate": "20191231-20200215", "StudyTime": "1200-2300"}
    # independently: dates in range AND time of day 12:00-23:00 -> none of 1 (10:15),
    # 2 (23:15), 4 (23:59:59)
    assert study_uids(db, **keys) == []
    combined = replace(OPTIONS, combined_datetime=True)
    # combined: from 2019-12-31 12:00 to 2020-02-15 23:00 -> 4 (Dec 31 23:59) and 1 (Jan 1)
    assert study_uids(db, combined, **keys) == uids(1, 4)
    assert study_uids(db, combined, StudyDate="20200101-", StudyTime="1100-") == uids(2, 3)
    assert study_uids(db, combined, StudyDate="-20200215", StudyTime="-2300") == uids(1, 4)


def test_modalities_in_study_matches_any_modality_of_the_study(db: pw.Database) -> None:
    """ModalitiesInStudy matches a study holding any of the given modalities."""
    assert study_uids(db, ModalitiesInStudy="MR") == uids(2, 3)
    assert study_uids(db, ModalitiesInStudy="SR") == uids(1)
    assert study_uids(db, ModalitiesInStudy=["US", "SR"]) == uids(1, 5)
    assert study_uids(db, ModalitiesInStudy="C*") == uids(1, 3, 4)
    assert study_uids(db, ModalitiesInStudy="M") == []


def test_modality_list_and_numbers_at_series_level(db: pw.Database) -> None:
    """Series keys: Modality as a list of values, Series Number as an integer."""
    _, responses, _ = run(
        db, ident("SERIES", StudyInstanceUID=S[3], Modality=["MR", "US"], SeriesNumber="")
    )
    assert [(r.Modality, int(r.SeriesNumber)) for r in responses] == [("MR", 2)]
    _, responses, _ = run(db, ident("SERIES", StudyInstanceUID=S[1], SeriesNumber="2", Modality=""))
    assert [r.Modality for r in responses] == ["SR"]


def test_keys_of_upper_levels_are_matched_too(db: pw.Database) -> None:
    """At SERIES level the patient and study keys sent along are matched and returned."""
    _, responses, _ = run(
        db,
        ident("SERIES", StudyInstanceUID=S[2], PatientName="DOE*", SeriesInstanceUID=""),
    )
    assert values(responses, "PatientName") == ["Doe^John"]
    _, responses, _ = run(
        db, ident("SERIES", StudyInstanceUID=S[2], PatientName="MÜLLER*", SeriesInstanceUID="")
    )
    assert responses == []


@pytest.mark.parametrize(
    ("value", "vr", "bounds"),
    [
        ("20200101", "DA", ("20200101", "20200101")),
        ("-20200101", "DA", (None, "20200101")),
        ("20200101-", "DA", ("20200101", None)),
        ("10", "TM", ("10", "105959.999999")),
        ("1015-101530.5", "TM", ("1015", "101530.599999")),
        ("2020-", "DT", ("20200101", None)),
        ("-202002", "DT", (None, "20200231235959.999999")),
        ("20200101120000-0500-20200102", "DT", ("20200101120000", "20200102235959.999999")),
        ("20200101-20200102", "DT", ("20200101", "20200102235959.999999")),
    ],
)
def test_range_parsing(value: str, vr: str, bounds: tuple[str | None, str | None]) -> None:
    """DA/TM/DT values and ranges (open ends, partial precision, UTC offsets) parse to bounds."""
    assert parse_range(value, vr) == bounds


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("StudyDate", "2020-01-01x"),
        ("StudyDate", "202001"),
        ("StudyTime", "25:00x"),
        ("StudyDate", "-"),
        ("NumberOfStudyRelatedSeries", "three"),
    ],
)
def test_malformed_values_are_unable_to_process(db: pw.Database, keyword: str, value: str) -> None:
    """A value the rules cannot match (bad date, time, number) is a QueryError (0xC000)."""
    identifier = ident("STUDY")
    # written as LO so pydicom lets the bad value through; implicit VR hides that on the wire
    identifier.add_new(keyword, "LO", value)
    with pytest.raises(QueryError) as info:
        run(db, identifier)
    assert not isinstance(info.value, IdentifierMismatchError)
    assert info.value.offending_tags


# -- hierarchy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "model"),
    [
        (Dataset(), STUDY_ROOT),
        (ident("SOMETHING"), STUDY_ROOT),
        (ident("study"), STUDY_ROOT),
        (ident("PATIENT", PatientID=""), STUDY_ROOT),
        (ident("PATIENT", PatientID="", StudyDate=""), PATIENT_ROOT),
        (ident("STUDY", StudyInstanceUID="", Modality="CT"), STUDY_ROOT),
        (ident("STUDY", StudyInstanceUID=""), PATIENT_ROOT),
        (ident("STUDY", PatientID="P*"), PATIENT_ROOT),
        (ident("SERIES", SeriesInstanceUID=""), STUDY_ROOT),
        (ident("SERIES", StudyInstanceUID=[S[1], S[2]]), STUDY_ROOT),
        (ident("IMAGE", StudyInstanceUID=S[1], SOPInstanceUID=""), STUDY_ROOT),
        (ident("IMAGE", StudyInstanceUID=S[1], SeriesInstanceUID=uid(1, 1)), PATIENT_ROOT),
    ],
    ids=[
        "no-level",
        "unknown-level",
        "lower-case-level",
        "patient-level-in-study-root",
        "study-key-at-patient-level",
        "series-key-at-study-level",
        "patient-root-no-patient-id",
        "patient-id-wildcard",
        "series-without-study-uid",
        "series-with-uid-list",
        "image-without-series-uid",
        "patient-root-image-without-patient-id",
    ],
)
def test_hierarchy_violations_are_identifier_mismatch(
    db: pw.Database, identifier: Dataset, model: InformationModel
) -> None:
    """Baseline hierarchy (C.4.1.2.1): a bad level, keys below it, or missing upper unique keys
    raise IdentifierMismatchError (0xA900), naming the offending attributes."""
    with pytest.raises(IdentifierMismatchError) as info:
        run(db, identifier, model)
    assert info.value.offending_tags


def test_relational_queries_need_no_upper_keys(db: pw.Database) -> None:
    """With relational queries negotiated, a SERIES query needs no Study Instance UID."""
    options = replace(OPTIONS, relational=True)
    _, responses, _ = run(db, ident("SERIES", Modality="MR", SeriesInstanceUID=""), options=options)
    assert values(responses, "SeriesInstanceUID") == sorted([uid(2, 1), uid(3, 2)])


def test_lenient_hierarchy_ignores_lower_keys_with_a_warning(db: pw.Database) -> None:
    """When not strict, keys below the level are not matched, come back empty, and warn."""
    options = replace(OPTIONS, strict_hierarchy=False)
    stream, responses, _ = run(
        db, ident("STUDY", StudyInstanceUID="", Modality="MR"), options=options
    )
    assert len(responses) == 5
    assert stream.warning
    assert all(r.Modality == "" for r in responses)


# -- what comes back -----------------------------------------------------------------------------


def test_only_requested_keys_come_back(db: pw.Database) -> None:
    """A response holds the requested keys plus Query/Retrieve Level and Retrieve AE Title."""
    _, responses, _ = run(db, ident("STUDY", StudyInstanceUID=S[2], StudyDate=""))
    (r,) = responses
    assert sorted(e.keyword for e in r) == [
        "QueryRetrieveLevel",
        "RetrieveAETitle",
        "StudyDate",
        "StudyInstanceUID",
    ]
    assert (r.QueryRetrieveLevel, r.RetrieveAETitle) == ("STUDY", "TEST_PACS")


def test_unindexed_keys_come_back_empty_and_unmatched_values_warn(db: pw.Database) -> None:
    """Keys the index lacks are returned zero-length; matching on one gives Pending 0xFF01."""
    stream, responses, _ = run(
        db,
        ident(
            "STUDY",
            StudyInstanceUID=S[1],
            PatientWeight="",
            OtherStudyNumbers="",
            InstanceAvailability="",
            ProcedureCodeSequence=[],
        ),
    )
    (r,) = responses
    assert not stream.warning
    assert r.PatientWeight is None and r.OtherStudyNumbers is None
    assert r.InstanceAvailability == "ONLINE"
    assert "ProcedureCodeSequence" in r and len(r.ProcedureCodeSequence) == 0
    stream, responses, _ = run(db, ident("STUDY", StudyInstanceUID=S[1], PatientWeight="80"))
    assert stream.warning and len(responses) == 1


@pytest.mark.parametrize(("implicit", "little"), [(True, True), (False, True), (False, False)])
def test_responses_in_every_uncompressed_transfer_syntax(
    db: pw.Database, implicit: bool, little: bool
) -> None:
    """Responses decode in implicit/explicit VR, little/big endian (binary US values too)."""
    _, responses, _ = run(
        db,
        ident("IMAGE", StudyInstanceUID=S[2], SeriesInstanceUID=uid(2, 1), Rows="", Columns=""),
        implicit=implicit,
        little=little,
    )
    assert [(r.Rows, r.Columns) for r in responses] == [(64, 32), (64, 32)]


# -- character sets ------------------------------------------------------------------------------


def test_latin1_query_gets_latin1_names(db: pw.Database) -> None:
    """ISO_IR 100 query: a Latin-1 name comes back Latin-1 encoded and says ISO_IR 100."""
    _, responses, raw = run(
        db, ident("STUDY", "ISO_IR 100", PatientName="MÜL*", StudyInstanceUID="")
    )
    (r,) = responses
    assert r.SpecificCharacterSet == "ISO_IR 100"
    assert str(r.PatientName) == "Müller^Hans"
    assert "Müller^Hans".encode("latin-1") in raw[0]


def test_utf8_query_gets_utf8_names(db: pw.Database) -> None:
    """ISO_IR 192 query: matched on a non-ASCII value, names come back in UTF-8."""
    _, responses, raw = run(db, ident("STUDY", "ISO_IR 192", PatientName="山田*", StudyDate=""))
    (r,) = responses
    assert r.SpecificCharacterSet == "ISO_IR 192"
    assert str(r.PatientName) == "山田^太郎"
    assert "山田^太郎".encode() in raw[0]


def test_name_outside_the_query_charset_falls_back_to_utf8(db: pw.Database) -> None:
    """A name that ISO_IR 100 cannot hold comes back in UTF-8, saying ISO_IR 192."""
    _, responses, raw = run(db, ident("STUDY", "ISO_IR 100", PatientName="", StudyDate=""))
    charsets = {str(r.PatientName): r.SpecificCharacterSet for r in responses}
    assert charsets["山田^太郎"] == "ISO_IR 192"
    assert charsets["Müller^Hans"] == charsets["Doe^John"] == "ISO_IR 100"
    assert any("山田^太郎".encode() in data for data in raw)


def test_query_without_charset(db: pw.Database) -> None:
    """No Specific Character Set: ASCII responses carry none; others say ISO_IR 192."""
    _, responses, _ = run(db, ident("PATIENT", PatientName="", PatientID=""), PATIENT_ROOT)
    charsets = {r.PatientID: r.get("SpecificCharacterSet") for r in responses}
    assert charsets == {"P1": "ISO_IR 192", "P2": None, "P3": "ISO_IR 192", "P4": None}


def test_iso2022_japanese_query(db: pw.Database) -> None:
    """ISO 2022 IR 87 (Japanese) query: the kanji name is encoded with escape sequences."""
    _, responses, raw = run(
        db,
        ident("PATIENT", ["ISO 2022 IR 6", "ISO 2022 IR 87"], PatientID="P3", PatientName=""),
        PATIENT_ROOT,
    )
    (r,) = responses
    assert str(r.PatientName) == "山田^太郎"
    assert b"\x1b$B" in raw[0]


# -- cap, streaming, search ----------------------------------------------------------------------


def test_result_cap_stops_and_says_so(db: pw.Database) -> None:
    """With max_results 2, two matches come back and the stream reports it was truncated."""
    stream, responses, _ = run(
        db, ident("STUDY", StudyInstanceUID=""), options=replace(OPTIONS, max_results=2)
    )
    assert len(responses) == 2 and stream.truncated and stream.limit == 2
    stream, responses, _ = run(
        db, ident("STUDY", StudyInstanceUID=""), options=replace(OPTIONS, max_results=5)
    )
    assert len(responses) == 5 and not stream.truncated


def test_stream_closed_early_releases_the_cursor(db: pw.Database) -> None:
    """Closing a stream after one match (a C-CANCEL) releases it; the next query runs normally."""
    stream = find(ident("STUDY", StudyInstanceUID=""), STUDY_ROOT, OPTIONS, db)
    iterator = iter(stream)
    next(iterator)
    stream.close()
    assert not db.in_transaction()
    assert study_uids(db) == uids(1, 2, 3, 4, 5)


def test_search_studies_pages_newest_first(config: Config, db: pw.Database) -> None:
    """The console's search: summaries newest first, paged, with C-FIND matching rules."""
    service = QueryService(config, db)
    page1 = service.search_studies(limit=2)
    page2 = service.search_studies(limit=2, offset=2)
    assert [s.study_date for s in page1 + page2] == ["20210101", "20200215", "20200101", "20191231"]
    (one,) = service.search_studies(patient_name="müller*")
    assert one.study_instance_uid == S[1] and one.modalities_in_study == ("CT", "SR")
    assert one.number_of_study_related_instances == 3
    assert {s.study_instance_uid for s in service.search_studies(modality="MR")} == set(uids(2, 3))
    assert len(studies()) == 5
