"""Small synthetic DICOM instances for index and import tests, and index consistency checks."""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
)

from tui_pacs.config import Config
from tui_pacs.services.ingest import Ingestor
from tui_pacs.store.models import Instance, Patient, Series, Study

UID_ROOT = "1.2.826.0.1.3680043.8.498."


def new_uid() -> str:
    """A fresh, valid DICOM UID, always the full 64 characters.

    ``generate_uid`` drops leading zeros of its random part, so one UID in ten is shorter: a
    snapshot whose tag tree holds one then sizes its horizontal scrollbar differently (the 200x60
    worklist pane snapshot failed so in CI).
    """
    digits = 64 - len(UID_ROOT)
    return UID_ROOT + str(10 ** (digits - 1) + secrets.randbelow(9 * 10 ** (digits - 1)))


def make_dataset(
    *,
    patient_id: str = "PAT001",
    patient_name: str = "Doe^Jane",
    study_uid: str,
    series_uid: str,
    sop_uid: str | None = None,
    modality: str = "CT",
    sop_class_uid: str | None = None,
    instance_number: int = 1,
    series_number: int = 1,
    description: str = "",
) -> Dataset:
    """A small image-less data set with every UID an index needs (Explicit VR Little Endian)."""
    sop_uid = sop_uid or new_uid()
    sop_class_uid = sop_class_uid or (MRImageStorage if modality == "MR" else CTImageStorage)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = "20240131"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC" + patient_id[-4:]
    ds.Modality = modality
    ds.ReferringPhysicianName = "Who^Doctor"
    ds.StudyDescription = "Synthetic study"
    ds.SeriesDescription = description or f"{modality} series {series_number}"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    return ds


def to_bytes(ds: Dataset) -> bytes:
    """The data set as a DICOM file (preamble, File Meta Information, data set)."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def write(ds: Dataset, path: Path) -> Path:
    """Write the data set as a DICOM file and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_bytes(ds))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def archive_files(root: Path) -> dict[str, str]:
    """Every archived file below ``root`` (temporary files excluded) and its SHA-256."""
    return {
        str(p.relative_to(root)): sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".incoming" not in p.parts
    }


def temp_files(root: Path) -> list[Path]:
    """Files left in the archive's incoming folders."""
    return [p for p in (root / ".incoming").rglob("*") if p.is_file()]


def row_counts() -> dict[str, int]:
    return {
        "patient": Patient.select().count(),
        "study": Study.select().count(),
        "series": Series.select().count(),
        "instance": Instance.select().count(),
    }


def assert_counts_consistent() -> None:
    """Every count and summary column equals what the instance rows say."""
    for series in Series.select():
        n = Instance.select().where(Instance.series == series).count()
        assert n > 0, f"empty series {series.series_instance_uid} left in the index"
        assert series.number_of_series_related_instances == n, series.series_instance_uid
    for study in Study.select():
        series = list(Series.select().where(Series.study == study))
        assert series, f"empty study {study.study_instance_uid} left in the index"
        instances = list(Instance.select().join(Series).where(Series.study == study))
        assert study.number_of_study_related_series == len(series)
        assert study.number_of_study_related_instances == len(instances)
        modalities = sorted({s.modality for s in series if s.modality})
        assert study.modalities_in_study == "\\".join(modalities)
        assert study.sop_classes_in_study == "\\".join(sorted({i.sop_class_uid for i in instances}))
    for patient in Patient.select():
        studies = list(Study.select().where(Study.patient == patient))
        assert studies, f"patient {patient.patient_id} without studies left in the index"
        n_series = Series.select().join(Study).where(Study.patient == patient).count()
        n_inst = Instance.select().join(Series).join(Study).where(Study.patient == patient).count()
        assert patient.number_of_patient_related_studies == len(studies)
        assert patient.number_of_patient_related_series == n_series
        assert patient.number_of_patient_related_instances == n_inst


@contextmanager
def open_ingestor(config: Config, **overrides: object) -> Iterator[Ingestor]:
    """An Ingestor on ``config`` (with field overrides), closed with its database afterwards."""
    ingestor = Ingestor(replace(config, **overrides))
    try:
        yield ingestor
    finally:
        ingestor.close()
        ingestor.db.close()
