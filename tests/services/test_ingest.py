"""Ingest: every pydicom test file archived exactly as received, indexed as pydicom reads it."""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from pathlib import Path

import peewee as pw
import pydicom
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pydicom.multival import MultiValue

from tests.peers import pydicom_test_files
from tests.store.synthetic import (
    archive_files,
    assert_counts_consistent,
    open_ingestor,
    row_counts,
    temp_files,
)
from tui_pacs import IMPLEMENTATION_CLASS_UID
from tui_pacs.config import Config
from tui_pacs.errors import DatasetError, DatasetMismatchError, InvalidUIDError
from tui_pacs.model import StoreDisposition
from tui_pacs.net.scp import StoreRequest
from tui_pacs.services.ingest import Ingestor
from tui_pacs.store.db import is_sqlite
from tui_pacs.store.models import Change, Instance, Patient, Series, Study

CHARSET_FILES = Path(pydicom.__file__).parent / "data" / "charset_files"

#: Index columns checked against pydicom, per table, with their DICOM keyword.
COLUMNS: dict[type[pw.Model], dict[str, str]] = {
    Patient: {
        "patient_id": "PatientID",
        "patient_name": "PatientName",
        "issuer_of_patient_id": "IssuerOfPatientID",
        "patient_birth_date": "PatientBirthDate",
        "patient_sex": "PatientSex",
    },
    Study: {
        "study_instance_uid": "StudyInstanceUID",
        "study_date": "StudyDate",
        "study_time": "StudyTime",
        "accession_number": "AccessionNumber",
        "study_id": "StudyID",
        "study_description": "StudyDescription",
        "referring_physician_name": "ReferringPhysicianName",
        "patient_age": "PatientAge",
        "institution_name": "InstitutionName",
    },
    Series: {
        "series_instance_uid": "SeriesInstanceUID",
        "modality": "Modality",
        "series_number": "SeriesNumber",
        "series_description": "SeriesDescription",
        "body_part_examined": "BodyPartExamined",
        "series_date": "SeriesDate",
        "series_time": "SeriesTime",
        "performed_procedure_step_start_date": "PerformedProcedureStepStartDate",
        "performed_procedure_step_start_time": "PerformedProcedureStepStartTime",
        "protocol_name": "ProtocolName",
        "station_name": "StationName",
    },
    Instance: {
        "sop_instance_uid": "SOPInstanceUID",
        "sop_class_uid": "SOPClassUID",
        "instance_number": "InstanceNumber",
        "content_date": "ContentDate",
        "content_time": "ContentTime",
        "rows": "Rows",
        "columns": "Columns",
        "number_of_frames": "NumberOfFrames",
        "specific_character_set": "SpecificCharacterSet",
    },
}


def _read(path: Path | bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(path)


def _expected(ds: Dataset, keyword: str, field: pw.Field) -> object:
    """What the index should hold for ``keyword``: pydicom's value as text (or int)."""
    value = ds.get(keyword)
    if isinstance(field, pw.IntegerField):
        if value is None or value == "":
            return None
        if isinstance(value, MultiValue):
            value = value[0]
        try:
            return int(value)
        except ValueError:  # e.g. IS '1A': not a number, so not indexed as one
            return None
    if value is None:
        return ""
    if isinstance(value, MultiValue):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    vr = ds[keyword].VR
    if vr == "DA":  # ACR-NEMA style 1997.04.24 is indexed as 19970424
        text = text.replace(".", "")
    if vr == "TM":
        text = text.replace(":", "")
    return text


def _dataset_bytes(path: Path) -> bytes:
    """The bytes after the File Meta Information (which carries its group length)."""
    meta = read_file_meta_info(path)
    return path.read_bytes()[132 + 12 + meta.FileMetaInformationGroupLength :]


def _transfer_syntax(path: Path, ds: Dataset) -> str:
    if "TransferSyntaxUID" in ds.file_meta:
        return str(ds.file_meta.TransferSyntaxUID)
    implicit, little = ds.original_encoding
    return (
        "1.2.840.10008.1.2"
        if implicit
        else "1.2.840.10008.1.2.1"
        if little
        else "1.2.840.10008.1.2.2"
    )


def _check_stored(ing: Ingestor, source: Path, stored: Path) -> list[str]:
    """Compare an archived file and its index rows with the original; return the differences."""
    problems: list[str] = []
    original, archived = _read(source), _read(stored)
    if archived != original:  # element for element, file meta excluded
        diff = [e.keyword or str(e.tag) for e in original if archived.get(e.tag) != e]
        problems.append(f"data set differs: {diff[:5]}")
    meta = archived.file_meta
    expected_meta = {
        "MediaStorageSOPClassUID": original.SOPClassUID,
        "MediaStorageSOPInstanceUID": original.SOPInstanceUID,
        "TransferSyntaxUID": _transfer_syntax(source, original),
        "ImplementationClassUID": IMPLEMENTATION_CLASS_UID,
    }
    for keyword, value in expected_meta.items():
        if meta.get(keyword) != value:
            problems.append(f"meta {keyword} {meta.get(keyword)!r} != {value!r}")
    if _dataset_bytes(stored) != _dataset_bytes(source):
        problems.append("data set bytes differ from the original's")
    inst = Instance.get(Instance.sop_instance_uid == original.SOPInstanceUID)
    blob = stored.read_bytes()
    if ing.archive.abspath(inst.path) != stored:
        problems.append(f"row path {inst.path} is not the stored file")
    if inst.checksum != hashlib.sha256(blob).hexdigest():
        problems.append("checksum is not the SHA-256 of the file")
    if inst.size != len(blob):
        problems.append(f"size {inst.size} != {len(blob)}")
    if inst.transfer_syntax_uid != expected_meta["TransferSyntaxUID"]:
        problems.append(f"indexed transfer syntax {inst.transfer_syntax_uid}")
    rows = {
        Instance: inst,
        Series: inst.series,
        Study: inst.series.study,
        Patient: inst.series.study.patient,
    }
    for model, columns in COLUMNS.items():
        for column, keyword in columns.items():
            want = _expected(original, keyword, getattr(model, column))
            got = getattr(rows[model], column)
            if got != want:
                problems.append(f"{model.__name__}.{column} {got!r} != {want!r}")
    return problems


def _wipe_index() -> None:
    for model in (Change, Instance, Series, Study, Patient):
        model.delete().execute()


def test_every_pydicom_file_round_trips(config: Config) -> None:
    """Each readable test file is archived element for element, in its transfer syntax, indexed."""
    files = pydicom_test_files()
    truncated = {f.name for f in files if "truncated" in f.name}
    assert {"MR_truncated.dcm", "rtplan_truncated.dcm"} <= truncated
    report: dict[str, list[str]] = {}
    syntaxes: set[str] = set()
    with open_ingestor(config) as ing:
        for source in files:
            _wipe_index()  # each file alone: its patient/study/series rows are its own
            try:
                result = ing.store_file(source)
            except DatasetError as exc:
                if source.name not in truncated:
                    report[source.name] = [f"rejected: {exc}"]
                elif "truncated" not in str(exc):
                    report[source.name] = [f"rejected without saying why: {exc}"]
                continue
            if source.name in truncated:
                report[source.name] = ["a truncated file was accepted"]
                continue
            assert result.disposition is StoreDisposition.STORED
            problems = _check_stored(ing, source, result.path)
            if problems:
                report[source.name] = problems
            syntaxes.add(Instance.get().transfer_syntax_uid)
            result.path.unlink()
        assert temp_files(config.storage_path) == []
    assert report == {}
    # The set covers the encodings that matter: implicit, explicit LE/BE, deflate, RLE, JPEG*.
    assert {
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2.1.99",
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
    } <= syntaxes


def test_truncated_files_are_rejected_and_leave_nothing(config: Config) -> None:
    """Files pydicom reads although they are cut short are refused with the element named."""
    base = Path(pydicom.__file__).parent / "data" / "test_files"
    with open_ingestor(config) as ing:
        for name, tag in (
            ("MR_truncated.dcm", "(7FE0,0010)"),
            ("rtplan_truncated.dcm", "(300A,00B0)"),
        ):
            with pytest.raises(
                DatasetError, match=rf"{tag.replace('(', r'\(').replace(')', r'\)')} is truncated"
            ):
                ing.store_file(base / name)
        # Cut inside the pixel data's closing delimiter, inside a JPEG 2000 fragment, inside
        # the header of Rows (pydicom then silently stops reading), and inside the delimiter of
        # a sequence in the middle of an SR: refused too.
        blob = (base / "JPEG2000.dcm").read_bytes()
        rows_header = _read(base / "JPEG2000.dcm")[0x00280010].file_tell - 4
        sr = (base / "reportsi.dcm").read_bytes()
        after_uids = _read(base / "reportsi.dcm")[0x0020000E].file_tell
        sr_delimiter = sr.index(b"\xfe\xff\xdd\xe0\0\0\0\0", after_uids)
        cuts = [
            (blob, len(blob) - 3),
            (blob, len(blob) - 100),
            (blob, rows_header),
            (sr, sr_delimiter + 4),
            (sr, sr_delimiter + 1),
        ]
        for data, cut in cuts:
            with pytest.raises(DatasetError, match="truncated|not a readable DICOM"):
                ing.store_bytes(data[:cut])
        assert archive_files(config.storage_path) == {}
        assert temp_files(config.storage_path) == []
        assert row_counts() == {"patient": 0, "study": 0, "series": 0, "instance": 0}
        # A cut exactly between two elements is a complete (shorter) data set.
        assert ing.store_bytes(sr[: sr_delimiter + 8]).disposition is StoreDisposition.STORED


def test_all_files_together_keep_first(config: Config) -> None:
    """All test files into one archive: one row per SOP Instance UID, the rest kept duplicates."""
    files = [f for f in pydicom_test_files() if "truncated" not in f.name]
    uids = Counter(_read(f).SOPInstanceUID for f in files)
    outcomes: Counter[StoreDisposition] = Counter()
    with open_ingestor(config) as ing:
        for f in files:
            outcomes[ing.store_file(f).disposition] += 1
    assert outcomes == {
        StoreDisposition.STORED: len(uids),
        StoreDisposition.DUPLICATE_KEPT: len(files) - len(uids),
    }
    assert Instance.select().count() == len(uids)
    assert len(archive_files(config.storage_path)) == len(uids)
    assert_counts_consistent()


def _charset_files() -> list[Path]:
    return [f for f in pydicom_test_files() if f.parent == CHARSET_FILES]


def test_charset_files_have_readable_names(config: Config) -> None:
    """Names in ISO 8859, UTF-8, GB18030 and ISO 2022 are indexed as pydicom decodes them."""
    files = _charset_files()
    charsets = {str(_read(f).SpecificCharacterSet) for f in files}
    for wanted in (
        "ISO_IR 100",
        "ISO_IR 192",
        "GB18030",
        "ISO 2022 IR 87",
        "ISO 2022 IR 13",
        "ISO 2022 IR 149",
        "ISO_IR 126",
        "ISO_IR 138",
        "ISO_IR 127",
        "ISO_IR 144",
    ):
        assert any(wanted in c for c in charsets), wanted
    with open_ingestor(config) as ing:
        for f in files:
            ing.store_file(f)
    for f in files:
        ds = _read(f)
        patient = Patient.get(Patient.patient_id == ds.PatientID)
        name = str(ds.PatientName)
        assert patient.patient_name == name, f.name
        assert patient.patient_name_norm == name.casefold(), f.name
        assert "\x1b" not in patient.patient_name, f"{f.name}: escape codes left in the name"
        study = Study.get(Study.study_instance_uid == ds.StudyInstanceUID)
        assert study.referring_physician_name == str(ds.get("ReferringPhysicianName", ""))
        assert study.referring_physician_name_norm == study.referring_physician_name.casefold()


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("BUC", "Buc^Jérôme"),
        ("buc^JÉR", "Buc^Jérôme"),
        ("äNEAS", "Äneas^Rüdiger"),
        ("ΔΙΟΝΥ", "Διονυσιος"),
        ("ЛЮК", "Люкceмбypг"),
        ("WANG^xiaodong=王^小東", "Wang^XiaoDong=王^小東"),
        ("wang^XIAODONG=王^小东", "Wang^XiaoDong=王^小东"),
        ("yamada^TAROU=山田", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
        ("HONG", "Hong^Gildong=洪^吉洞=홍^길동"),
        ("김희", "김희중"),
        ("שרון", "שרון^דבורה"),
        ("قباني", "قباني^لنزار"),
    ],
)
def test_prefix_query_on_norm_finds_other_case(config: Config, typed: str, expected: str) -> None:
    """A case-sensitive LIKE prefix on patient_name_norm finds a name typed in another case."""
    with open_ingestor(config) as ing:
        for f in _charset_files():
            ing.store_file(f)
    query = Patient.select().where(
        _case_sensitive_prefix(Patient.patient_name_norm, typed.casefold())
    )
    assert {p.patient_name for p in query} == {expected}
    if typed != expected[: len(typed)]:
        raw = Patient.select().where(_case_sensitive_prefix(Patient.patient_name, typed))
        assert list(raw) == [], "a case-sensitive prefix on the raw name must not match"


def _case_sensitive_prefix(field: pw.Field, prefix: str) -> pw.Expression:
    """A case-sensitive prefix match either database can serve from an index."""
    if is_sqlite(Patient._meta.database.obj):
        # SQLite's LIKE ignores ASCII case; GLOB does not.
        glob = "".join(f"[{c}]" if c in "*?[]" else c for c in prefix) + "*"
        return pw.Expression(field, "GLOB", glob)
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return pw.Expression(field, "LIKE", like)


def _request(path: Path, **overrides: str) -> StoreRequest:
    ds = _read(path)
    fields = dict(
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        transfer_syntax_uid=_transfer_syntax(path, ds),
        dataset=memoryview(_dataset_bytes(path)),
        calling_ae_title="MODALITY",
        peer_address="127.0.0.1",
    )
    fields.update(overrides)
    return StoreRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    ["MR_small_bigendian.dcm", "rtplan.dcm", "JPEG2000.dcm", "image_dfl.dcm", "CT_small.dcm"],
)
def test_store_request_archives_exactly_what_was_sent(sqlite_config: Config, name: str) -> None:
    """A C-STORE data set is archived byte for byte behind our meta header, whoever sent it."""
    source = Path(pydicom.__file__).parent / "data" / "test_files" / name
    with open_ingestor(sqlite_config) as ing:
        result = ing.store_request(_request(source))
        assert result.disposition is StoreDisposition.STORED
        assert _check_stored(ing, source, result.path) == []
        inst = Instance.get()
        assert inst.calling_ae_title == "MODALITY"
        # The same instance imported from its file gives the same archived bytes.
        assert ing.store_file(source).disposition is StoreDisposition.DUPLICATE_KEPT


def test_store_request_refuses_mismatch_and_bad_uids(sqlite_config: Config) -> None:
    """Declared UIDs that contradict the data set, or are not UIDs, are refused before any write."""
    source = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
    with open_ingestor(sqlite_config) as ing:
        with pytest.raises(DatasetMismatchError, match="SOP Instance UID"):
            ing.store_request(_request(source, sop_instance_uid="1.2.3.4"))
        with pytest.raises(DatasetMismatchError, match="SOP Class UID"):
            ing.store_request(_request(source, sop_class_uid="1.2.840.10008.5.1.4.1.1.4"))
        with pytest.raises(InvalidUIDError):
            ing.store_request(_request(source, sop_instance_uid="../../etc/passwd"))
        with pytest.raises(InvalidUIDError):
            ing.store_request(_request(source, transfer_syntax_uid="1.2/840"))
    assert archive_files(sqlite_config.storage_path) == {}
    assert temp_files(sqlite_config.storage_path) == []


def test_dataset_uid_that_escapes_is_refused(sqlite_config: Config, tmp_path: Path) -> None:
    """A file whose own Study/Series/SOP UID could escape the archive folder is refused."""
    base = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
    with open_ingestor(sqlite_config) as ing:
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            ds = _read(base)
            setattr(ds, keyword, "1.2/../../../x")
            if keyword == "SOPInstanceUID":
                ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
            path = tmp_path / f"{keyword}.dcm"
            ds.save_as(path)
            with pytest.raises(InvalidUIDError):
                ing.store_file(path)
    assert archive_files(sqlite_config.storage_path) == {}
    assert not (sqlite_config.storage_path.parent / "x").exists()
