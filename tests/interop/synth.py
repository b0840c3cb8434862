"""Synthetic DICOM for network tests: small CT images and whole series written to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
)

# new_uid: the same UIDs as the index tests' (interop tests import it from here).
from tests.store.synthetic import new_uid


def make_ct(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    rows: int = 64,
    cols: int = 64,
    *,
    patient_id: str = "SYNTH001",
    patient_name: str = "Synthetic^Patient",
    instance_number: int = 1,
    series_number: int = 1,
    modality: str = "CT",
) -> Dataset:
    """A complete, valid CT Image Storage data set: 16-bit pixels, Explicit VR Little Endian.

    Pixel values depend on ``instance_number``, so two instances never carry the same bytes.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = "20240131"
    ds.StudyTime = "101500"
    ds.ContentDate = "20240131"
    ds.ContentTime = "101500"
    ds.AccessionNumber = "ACC0001"
    ds.Modality = modality
    ds.Manufacturer = "tui-pacs tests"
    ds.ReferringPhysicianName = "Referrer^Doctor"
    ds.StudyDescription = "Synthetic study"
    ds.SeriesDescription = f"Synthetic series {series_number}"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.SliceThickness = "1.0"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = [0.0, 0.0, float(instance_number)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.FrameOfReferenceUID = study_uid + ".1" if len(study_uid) <= 62 else study_uid
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [0.5, 0.5]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    pixels = (np.arange(rows * cols, dtype=np.uint32) * 7 + instance_number * 131) % 4096
    ds.PixelData = pixels.astype("<u2").tobytes()
    return ds


def write_series(
    folder: Path,
    n: int,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    rows: int = 64,
    cols: int = 64,
    patient_id: str = "SYNTH001",
    patient_name: str = "Synthetic^Patient",
    series_number: int = 1,
) -> list[Path]:
    """Write ``n`` CT instances of one series as ``folder/IMG00001.dcm``...; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or new_uid()
    series_uid = series_uid or new_uid()
    paths = []
    for i in range(1, n + 1):
        ds = make_ct(
            study_uid,
            series_uid,
            new_uid(),
            rows,
            cols,
            patient_id=patient_id,
            patient_name=patient_name,
            instance_number=i,
            series_number=series_number,
        )
        path = folder / f"IMG{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
