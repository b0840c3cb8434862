"""A small archive for the C-FIND tests: patients, studies, series and instances with known values.

The same instances feed the matching-engine tests (ingested in-process) and the DCMTK tests
(written as files and imported into a running node). Names include Latin-1 and Japanese text so
the character set handling shows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

UID_ROOT = "1.2.826.0.1.3680043.8.498.77."
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def uid(*parts: int) -> str:
    """A fixed test UID."""
    return UID_ROOT + ".".join(str(p) for p in parts)


@dataclass(frozen=True)
class Inst:
    """One instance and every index attribute the tests look at."""

    patient_id: str
    patient_name: str
    study: int
    series: int
    number: int
    study_date: str = "20200101"
    study_time: str = "101500"
    accession: str = ""
    description: str = ""
    modality: str = "CT"
    birth_date: str = "19700101"
    sex: str = "M"
    referring: str = ""
    body_part: str = ""
    charset: str = "ISO_IR 192"
    sop_class: str = str(CTImageStorage)

    @property
    def study_uid(self) -> str:
        return uid(self.study)

    @property
    def series_uid(self) -> str:
        return uid(self.study, self.series)

    @property
    def sop_uid(self) -> str:
        return uid(self.study, self.series, self.number)


def _study(pid: str, name: str, study: int, **kw: str) -> dict[str, object]:
    return {"patient_id": pid, "patient_name": name, "study": study, **kw}


_S1 = _study(
    "P1",
    "Müller^Hans",
    1,
    study_date="20200101",
    study_time="101500",
    accession="ACC001",
    description="CT HEAD",
    referring="House^Gregory",
    charset="ISO_IR 100",
)
_S2 = _study(
    "P2",
    "Doe^John",
    2,
    study_date="20200215",
    study_time="231500",
    accession="ACC002",
    description="MR KNEE",
    sex="M",
)
_S3 = _study(
    "P2",
    "Doe^John",
    3,
    study_date="20210101",
    study_time="080000",
    accession="ACC003",
    description="CT CHEST",
    sex="M",
)
_S4 = _study(
    "P3",
    "山田^太郎",
    4,
    study_date="20191231",
    study_time="235959",
    accession="ACC004",
    description="CT ABDOMEN",
    sex="M",
    birth_date="19800505",
)
_S5 = _study(
    "P4",
    "DOE^JANE",
    5,
    study_date="",
    study_time="",
    accession="ACC005",
    description="US",
    sex="F",
    birth_date="",
)

#: The archive: 4 patients, 5 studies, 8 series, 11 instances.
ARCHIVE: tuple[Inst, ...] = (
    Inst(**_S1, series=1, number=1, body_part="HEAD"),  # type: ignore[arg-type]
    Inst(**_S1, series=1, number=2, body_part="HEAD"),  # type: ignore[arg-type]
    Inst(**_S1, series=2, number=1, modality="SR", sop_class=BASIC_TEXT_SR),  # type: ignore[arg-type]
    Inst(**_S2, series=1, number=1, modality="MR", sop_class=str(MRImageStorage)),  # type: ignore[arg-type]
    Inst(**_S2, series=1, number=2, modality="MR", sop_class=str(MRImageStorage)),  # type: ignore[arg-type]
    Inst(**_S3, series=1, number=1),  # type: ignore[arg-type]
    Inst(**_S3, series=2, number=1, modality="MR", sop_class=str(MRImageStorage)),  # type: ignore[arg-type]
    Inst(**_S4, series=1, number=1),  # type: ignore[arg-type]
    Inst(**_S4, series=2, number=1),  # type: ignore[arg-type]
    Inst(**_S5, series=1, number=1, modality="US"),  # type: ignore[arg-type]
    Inst(**_S5, series=1, number=2, modality="US"),  # type: ignore[arg-type]
)


def dataset(inst: Inst) -> Dataset:
    """The (pixel-less) data set of one test instance."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = inst.sop_class
    meta.MediaStorageSOPInstanceUID = inst.sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = inst.charset
    ds.SOPClassUID = inst.sop_class
    ds.SOPInstanceUID = inst.sop_uid
    ds.StudyInstanceUID = inst.study_uid
    ds.SeriesInstanceUID = inst.series_uid
    ds.PatientID = inst.patient_id
    ds.PatientName = inst.patient_name
    ds.PatientBirthDate = inst.birth_date
    ds.PatientSex = inst.sex
    ds.StudyDate = inst.study_date
    ds.StudyTime = inst.study_time
    ds.SeriesDate = inst.study_date
    ds.SeriesTime = inst.study_time
    ds.AccessionNumber = inst.accession
    ds.StudyDescription = inst.description
    ds.ReferringPhysicianName = inst.referring
    ds.StudyID = str(inst.study)
    ds.Modality = inst.modality
    ds.SeriesNumber = inst.series
    ds.SeriesDescription = f"{inst.modality} series {inst.series}"
    ds.BodyPartExamined = inst.body_part
    ds.InstanceNumber = inst.number
    ds.ContentDate = inst.study_date
    ds.ContentTime = inst.study_time
    if inst.modality != "SR":
        ds.Rows = 64
        ds.Columns = 32
    return ds


def encoded(inst: Inst) -> bytes:
    """One test instance as a DICOM file in memory."""
    buffer = io.BytesIO()
    dataset(inst).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def write_archive(folder: Path, instances: tuple[Inst, ...] = ARCHIVE) -> list[Path]:
    """Write the test instances as files; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for inst in instances:
        path = folder / f"{inst.study}_{inst.series}_{inst.number}.dcm"
        path.write_bytes(encoded(inst))
        paths.append(path)
    return paths


def studies() -> dict[str, Inst]:
    """The first instance of every test study, by Study Instance UID."""
    out: dict[str, Inst] = {}
    for inst in ARCHIVE:
        out.setdefault(inst.study_uid, inst)
    return out
