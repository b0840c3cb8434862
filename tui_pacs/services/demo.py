"""A small, realistic demo archive made on the spot with pydicom, so a first run shows studies.

Twelve patients (one with a non-ASCII name in ISO_IR 100, one in UTF-8) with CT, MR, CR and US
studies spread over the last four weeks, several series each and small images. Everything is
derived from a seed and a reference day, so the same call makes the same UIDs, and the data goes
through the normal :class:`~tui_pacs.services.ingest.Ingestor` path like any received instance.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    UltrasoundImageStorage,
    generate_uid,
)

from tui_pacs.config import Config
from tui_pacs.services.ingest import Ingestor
from tui_pacs.store.db import thread_connection, use_database
from tui_pacs.store.models import Study

log = logging.getLogger(__name__)

#: pydicom's UID root; demo UIDs are derived from it, the seed and each object's place.
UID_ROOT = "1.2.826.0.1.3680043.8.498."

#: (name, id, birth date, sex, character set)
PATIENTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("MÜLLER^Jürgen", "DEMO0001", "19570312", "M", "ISO_IR 100"),
    ("SMITH^John^Q", "DEMO0002", "19800704", "M", ""),
    ("GARCÍA LÓPEZ^María", "DEMO0003", "19920219", "F", "ISO_IR 192"),
    ("NGUYEN^Thi Lan", "DEMO0004", "19651130", "F", ""),
    ("OKONKWO^Chinedu", "DEMO0005", "19880808", "M", ""),
    ("JOHANSSON^Erik", "DEMO0006", "19450101", "M", ""),
    ("ROSSI^Giulia", "DEMO0007", "20010915", "F", ""),
    ("DUBOIS^Camille", "DEMO0008", "19771022", "F", ""),
    ("KOWALSKI^Piotr", "DEMO0009", "19690517", "M", ""),
    ("TANAKA^Yuki", "DEMO0010", "19990227", "F", ""),
    ("O'BRIEN^Siobhan", "DEMO0011", "19840603", "F", ""),
    ("PATEL^Anjali", "DEMO0012", "19731209", "F", ""),
)

#: modality -> (SOP class, [(study description, body part, [(series description, images)])])
PROTOCOLS: dict[str, tuple[str, list[tuple[str, str, list[tuple[str, int]]]]]] = {
    "CT": (
        CTImageStorage,
        [
            ("CT CHEST WITH CONTRAST", "CHEST", [("Scout", 1), ("Axial 5mm", 6), ("Lung 1mm", 6)]),
            ("CT HEAD WITHOUT CONTRAST", "HEAD", [("Scout", 1), ("Axial 5mm", 6)]),
            ("CT ABDOMEN PELVIS", "ABDOMEN", [("Scout", 1), ("Portal venous", 6), ("Coronal", 4)]),
        ],
    ),
    "MR": (
        MRImageStorage,
        [
            ("MR BRAIN WITHOUT CONTRAST", "BRAIN", [("Ax T1", 5), ("Ax T2", 5), ("Sag FLAIR", 4)]),
            ("MR KNEE LEFT", "KNEE", [("Cor PD FS", 4), ("Sag T2", 4)]),
            ("MR LUMBAR SPINE", "LSPINE", [("Sag T1", 4), ("Sag T2", 4), ("Ax T2", 4)]),
        ],
    ),
    "CR": (
        ComputedRadiographyImageStorage,
        [
            ("XR CHEST 2 VIEWS", "CHEST", [("PA", 1), ("LAT", 1)]),
            ("XR HAND RIGHT", "HAND", [("PA", 1), ("OBLIQUE", 1), ("LATERAL", 1)]),
        ],
    ),
    "US": (
        UltrasoundImageStorage,
        [
            ("US ABDOMEN COMPLETE", "ABDOMEN", [("Liver", 3), ("Kidneys", 3)]),
            ("US THYROID", "NECK", [("Thyroid", 4)]),
        ],
    ),
}

#: (patient index, modality, protocol index, days before the reference day, hour)
STUDIES: tuple[tuple[int, str, int, int, int], ...] = (
    (0, "CT", 0, 0, 8),
    (0, "CR", 0, 9, 10),
    (0, "CT", 0, 26, 9),
    (1, "MR", 0, 0, 11),
    (1, "CR", 1, 12, 15),
    (2, "US", 0, 1, 9),
    (2, "MR", 2, 15, 13),
    (3, "CR", 0, 1, 14),
    (3, "CT", 2, 3, 16),
    (4, "MR", 1, 2, 10),
    (5, "CT", 1, 4, 7),
    (5, "CR", 0, 4, 8),
    (6, "US", 1, 5, 12),
    (7, "MR", 0, 6, 9),
    (7, "CT", 1, 20, 18),
    (8, "CR", 1, 8, 11),
    (9, "US", 0, 11, 15),
    (10, "CT", 0, 14, 10),
    (11, "MR", 2, 18, 8),
    (11, "CR", 0, 24, 9),
)

REFERRERS = ("HOUSE^Gregory", "GREY^Meredith", "ROSS^Doug", "QUINN^Michaela")


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What the demo fill added."""

    patients: int
    studies: int
    instances: int


def _uid(seed: int, *parts: object) -> str:
    return str(generate_uid(UID_ROOT, entropy_srcs=[str(seed), *(str(p) for p in parts)]))


def _pixels(modality: str, rows: int, cols: int, index: int, rng: np.random.Generator) -> bytes:
    """A plausible-looking phantom: an ellipse of tissue, a brighter structure, some noise."""
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy, cx = (rows - 1) / 2, (cols - 1) / 2
    r = np.hypot((x - cx) / (cols * 0.42), (y - cy) / (rows * 0.36))
    inner = np.hypot(
        (x - cx - cols * 0.12) / (cols * 0.1), (y - cy) / (rows * (0.08 + index * 0.01))
    )
    if modality == "US":
        img = np.where(r < 1, 90.0, 0.0) + np.where(inner < 1, 60.0, 0.0)
        img += rng.normal(0, 18, size=img.shape)
        return img.clip(0, 255).astype(np.uint8).tobytes()
    if modality == "CT":
        img = np.where(r < 1, 1064.0, 24.0) + np.where(inner < 1, 600.0, 0.0)
    elif modality == "MR":
        img = np.where(r < 1, 400.0, 0.0) + np.where(inner < 1, 500.0, 0.0)
    else:
        img = np.where(r < 1, 1800.0, 300.0) - np.where(inner < 1, 900.0, 0.0)
    img += rng.normal(0, 10, size=img.shape)
    return img.clip(0, 4095).astype("<u2").tobytes()


def _image(ds: Dataset, modality: str, index: int, rng: np.random.Generator) -> None:
    if modality == "US":
        rows, cols, bits = 72, 96, 8
    elif modality == "CR":
        rows, cols, bits = 128, 104, 16
    else:
        rows, cols, bits = 64, 64, 16
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = bits
    ds.BitsStored = 8 if bits == 8 else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if modality == "CT":
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
    elif modality in ("MR", "CR"):
        ds.WindowCenter = "600" if modality == "MR" else "1200"
        ds.WindowWidth = "1200" if modality == "MR" else "2400"
    ds.PixelData = _pixels(modality, rows, cols, index, rng)
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"


def demo_datasets(today: date | None = None, seed: int = 1) -> Iterator[Dataset]:
    """Every instance of the demo archive, study after study.

    Args:
        today: The reference day (studies fall on it and up to four weeks before).
        seed: Changes every UID (two seeds give two disjoint archives).
    """
    day0 = today or date.today()
    rng = np.random.default_rng(seed)
    for number, (patient_index, modality, protocol_index, days_ago, hour) in enumerate(STUDIES):
        name, patient_id, birth, sex, charset = PATIENTS[patient_index]
        sop_class, protocols = PROTOCOLS[modality]
        description, body_part, series_list = protocols[protocol_index]
        study_day = (day0 - timedelta(days=days_ago)).strftime("%Y%m%d")
        study_uid = _uid(seed, "study", number)
        frame_uid = _uid(seed, "frame", number)
        accession = f"A{day0.year % 100:02d}{number + 1:05d}"
        for series_number, (series_description, images) in enumerate(series_list, start=1):
            series_uid = _uid(seed, "series", number, series_number)
            series_time = f"{hour:02d}{10 + series_number * 4:02d}00"
            for image in range(1, images + 1):
                ds = Dataset()
                if charset:
                    ds.SpecificCharacterSet = charset
                ds.ImageType = (
                    ["ORIGINAL", "PRIMARY", "AXIAL"]
                    if modality == "CT"
                    else ["ORIGINAL", "PRIMARY"]
                )
                ds.SOPClassUID = sop_class
                ds.SOPInstanceUID = _uid(seed, "sop", number, series_number, image)
                ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_day
                ds.StudyTime = f"{hour:02d}0500"
                ds.SeriesTime = series_time
                ds.ContentTime = f"{series_time[:4]}{image:02d}"
                ds.AccessionNumber = accession
                ds.Modality = modality
                ds.Manufacturer = "tui-pacs demo"
                ds.InstitutionName = "St. Elsewhere Hospital"
                ds.StationName = f"{modality}01"
                ds.ReferringPhysicianName = REFERRERS[number % len(REFERRERS)]
                ds.StudyDescription = description
                ds.SeriesDescription = series_description
                ds.ProtocolName = description.title()
                ds.BodyPartExamined = body_part
                ds.PatientName = name
                ds.PatientID = patient_id
                ds.IssuerOfPatientID = "DEMO"
                ds.PatientBirthDate = birth
                ds.PatientSex = sex
                ds.PatientAge = f"{(day0.year - int(birth[:4])):03d}Y"
                ds.StudyInstanceUID = study_uid
                ds.SeriesInstanceUID = series_uid
                ds.StudyID = str(number + 1)
                ds.SeriesNumber = series_number
                ds.InstanceNumber = image
                ds.FrameOfReferenceUID = frame_uid
                if modality in ("CT", "MR"):
                    ds.SliceThickness = "5.0"
                    ds.ImagePositionPatient = [-120.0, -120.0, float(image * 5)]
                    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
                    ds.PixelSpacing = [3.75, 3.75]
                if modality == "CT":
                    ds.KVP = "120"
                    ds.PatientPosition = "HFS"
                if modality == "MR":
                    ds.MagneticFieldStrength = "1.5"
                    ds.EchoTime = "12" if "T1" in series_description else "90"
                    ds.RepetitionTime = "500" if "T1" in series_description else "4000"
                code = Dataset()
                code.CodeValue = f"{modality}{protocol_index + 1:03d}"
                code.CodingSchemeDesignator = "99DEMO"
                code.CodeMeaning = description.title()
                ds.ProcedureCodeSequence = [code]
                _image(ds, modality, image, rng)
                meta = FileMetaDataset()
                meta.MediaStorageSOPClassUID = ds.SOPClassUID
                meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                meta.TransferSyntaxUID = ExplicitVRLittleEndian
                ds.file_meta = meta
                yield ds


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def archive_is_empty(config: Config) -> bool:
    """True when the index holds no study yet."""
    db = use_database(config.effective_database_url)
    with thread_connection(db):
        return not Study.select().exists()


def fill_demo(
    config: Config,
    *,
    today: date | None = None,
    seed: int = 1,
    ingestor: Ingestor | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Generate the demo archive and store it through the normal ingest path.

    Args:
        config: Where the archive and index are.
        today: The reference day of the studies (default: today).
        seed: Varies the UIDs.
        ingestor: An ingestor to use (the console's node); a private one otherwise.
        progress: Called with the number of instances stored so far.
    """
    own = ingestor is None
    ing = ingestor or Ingestor(config, use_database(config.effective_database_url))
    stored = 0
    try:
        # A few threads let the index writer commit several instances per transaction.
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="demo") as pool:
            blobs = (_encode(ds) for ds in demo_datasets(today, seed))
            for _ in pool.map(lambda blob: ing.store_bytes(blob, "DEMO"), blobs):
                stored += 1
                if progress is not None and stored % 20 == 0:
                    progress(stored)
    finally:
        if own:
            ing.close()
    if progress is not None:
        progress(stored)
    log.info("demo archive: %d instances stored", stored)
    return DemoSummary(
        patients=len({p for p, *_ in STUDIES}), studies=len(STUDIES), instances=stored
    )
