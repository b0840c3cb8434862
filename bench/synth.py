"""Synthetic CT instances for the benchmarks: realistic headers, 16-bit pixels, unique UIDs.

A data set is generated once per (rows, count) and cached; its files are dealt round-robin into
``part0`` .. ``part3`` so four ``storescu`` processes can each send a quarter of the same study.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

#: Our synthetic UID root (a random-looking 2.25 UUID-derived root is overkill for test data).
UID_ROOT = "1.2.826.0.1.3680043.8.498."
PARTS = 4
#: Instances per series; two series per study.
SERIES_SIZE = 250
_STAMP = "synth.json"


def _pixels(rows: int, index: int) -> bytes:
    """A CT-like slice: a disc of soft tissue in air with a brighter bone ring, some noise."""
    y, x = np.mgrid[0:rows, 0:rows].astype(np.float32)
    c = (rows - 1) / 2
    r = np.hypot(x - c, y - c) / (rows / 2)
    img = np.full((rows, rows), -1000.0, dtype=np.float32)
    img[r < 0.85] = 40.0
    img[(r > 0.75) & (r < 0.85)] = 700.0 + 5 * (index % 50)
    rng = np.random.default_rng(index)
    img += rng.normal(0, 12, size=img.shape).astype(np.float32)
    return (img + 1024).clip(0, 4095).astype("<u2").tobytes()


def _instance(rows: int, index: int, study: Dataset, series_uid: str, pixels: bytes) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid(UID_ROOT)
    for keyword in (
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ReferringPhysicianName",
        "StudyDescription",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyID",
        "InstitutionName",
    ):
        setattr(ds, keyword, getattr(study, keyword))
    ds.SeriesDate = ds.ContentDate = ds.StudyDate
    ds.SeriesTime = ds.ContentTime = ds.StudyTime
    ds.Modality = "CT"
    ds.Manufacturer = "tui-pacs bench"
    ds.StationName = "BENCHCT"
    ds.SeriesDescription = "Synthetic axial"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "1.0"
    ds.KVP = "120"
    ds.ProtocolName = "Bench chest"
    ds.PatientPosition = "HFS"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = "2"
    ds.InstanceNumber = str(index % SERIES_SIZE + 1)
    ds.ImagePositionPatient = ["-250.0", "-250.0", f"{-(index % SERIES_SIZE):.1f}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = study.FrameOfReferenceUID
    ds.SliceLocation = f"{-(index % SERIES_SIZE):.1f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = rows
    ds.PixelSpacing = [f"{500 / rows:.4f}", f"{500 / rows:.4f}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.PixelData = pixels
    ds["PixelData"].VR = "OW"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def _study(number: int) -> Dataset:
    study = Dataset()
    study.StudyDate = "20240115"
    study.StudyTime = f"{8 + number % 10:02d}3000"
    study.AccessionNumber = f"BENCH{number:05d}"
    study.ReferringPhysicianName = "Referrer^Rita"
    study.StudyDescription = "CT chest (synthetic)"
    study.PatientName = f"Bench^Patient{number:03d}"
    study.PatientID = f"BENCH{number:05d}"
    study.PatientBirthDate = "19600101"
    study.PatientSex = "O"
    study.StudyInstanceUID = generate_uid(UID_ROOT)
    study.StudyID = str(number)
    study.InstitutionName = "Bench Hospital"
    study.FrameOfReferenceUID = generate_uid(UID_ROOT)
    return study


def generate(folder: Path, rows: int, count: int) -> list[Path]:
    """Make (or reuse) ``count`` CT instances of ``rows`` x ``rows`` pixels under ``folder``.

    Returns:
        The part folders, ``PARTS`` of them, holding the files round-robin.
    """
    parts = [folder / f"part{i}" for i in range(PARTS)]
    stamp = folder / _STAMP
    want = {"rows": rows, "count": count, "parts": PARTS, "version": 1}
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return parts
    shutil.rmtree(folder, ignore_errors=True)
    for p in parts:
        p.mkdir(parents=True)
    # A handful of distinct pixel blocks is enough: the payload size, not its entropy, matters.
    blocks = [_pixels(rows, i) for i in range(8)]
    study = series_uid = None
    for i in range(count):
        if i % (2 * SERIES_SIZE) == 0:
            study = _study(i // (2 * SERIES_SIZE) + 1)
        if i % SERIES_SIZE == 0:
            series_uid = generate_uid(UID_ROOT)
        assert study is not None and series_uid is not None
        ds = _instance(rows, i, study, series_uid, blocks[i % len(blocks)])
        ds.save_as(parts[i % PARTS] / f"CT{i:06d}.dcm", enforce_file_format=True)
    stamp.write_text(json.dumps(want))
    return parts
