"""A small, realistic demo archive made on the spot with pydicom, so a first run shows studies.

Twelve patients (one with a non-ASCII name in ISO_IR 100, one in UTF-8) with CT, MR, CR and US
studies spread over the last four weeks, several series each and small images. Everything is
derived from a seed and a reference day, so the same call makes the same UIDs, and the data goes
through the normal :class:`~tui_pacs.services.ingest.Ingestor` path like any received instance.
No image is ever made later than ``now``: a study of today whose hour has not come yet moves
back to before ``now``.

With ``worklist=True`` the demo also fills today's worklist (:data:`DESK_ORDERS`): orders spread
around ``now`` (some done, one in progress, some scheduled later), their MPPS, and a few more
studies of today, so that the worklist pane shows every flag a tech must not miss.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

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

#: Today's worklist of the demo: (name, patient index, modality, protocol index, minutes from
#: ``now``, images, what happens). ``images``: "all", "first-series" (still coming), "none", or
#: "study:N" (the images are study N of :data:`STUDIES`). What happens: "clean" (MPPS completed
#: with every image), "count" (MPPS reports two images more than arrived), "noimg" (MPPS
#: completed, nothing sent), "id" (the modality typed another Patient ID), "name" (the order
#: spells the name differently), "progress" (MPPS in progress), "arrived", "scheduled".
DESK_ORDERS: tuple[tuple[str, int, str, int, int, str, str], ...] = (
    ("clean", 0, "CT", 0, 0, "study:0", "clean"),
    ("count", 1, "MR", 0, 0, "study:3", "count"),
    ("id", 3, "CR", 0, -95, "all", "id"),
    ("name", 4, "US", 0, -70, "all", "name"),
    ("noimg", 6, "US", 1, -45, "none", "noimg"),
    ("progress", 5, "CT", 1, -20, "first-series", "progress"),
    ("arrived", 7, "MR", 1, 40, "none", "arrived"),
    ("later", 8, "CR", 1, 100, "none", "scheduled"),
    ("evening", 9, "US", 0, 180, "none", "scheduled"),
)
#: A study of today that no order claims (patient index, modality, protocol, minutes from now).
DESK_STRAY = (11, "CR", 1, -60)
#: The demo's modality stations (scheduled station AE titles).
STATIONS = {"CT": "CT01", "MR": "MR01", "CR": "CR01", "US": "US01"}


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What the demo fill added."""

    patients: int
    studies: int
    instances: int
    orders: int = 0


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


@dataclass(frozen=True, slots=True)
class DemoStudy:
    """One study of the demo: whose, what, when, and under which identifiers.

    Attributes:
        number: Its place in the demo (UIDs, accession number and Study ID derive from it).
        patient: (name, ID, birth date, sex, character set) as in :data:`PATIENTS`.
        modality: CT, MR, CR or US.
        protocol: Index into the modality's protocols in :data:`PROTOCOLS`.
        start: When the study began (its images follow within half an hour).
        patient_id: The Patient ID the images carry (a modality's typo), if not the patient's.
        series_limit: Only the first series so many series (0: all).
    """

    number: int
    patient: tuple[str, str, str, str, str]
    modality: str
    protocol: int
    start: datetime
    patient_id: str = ""
    series_limit: int = 0

    def study_instance_uid(self, seed: int) -> str:
        """Its Study Instance UID under ``seed``."""
        return _uid(seed, "study", self.number)

    def accession_number(self, day0: date) -> str:
        """Its accession number."""
        return f"A{day0.year % 100:02d}{self.number + 1:05d}"

    @property
    def minutes(self) -> int:
        """Minutes from its start to its last image (a bound)."""
        return 11 + 4 * len(PROTOCOLS[self.modality][1][self.protocol][2])


def _before(start: datetime, minutes: int, now: datetime, shifted: int) -> datetime:
    """``start``, or a time before ``now`` when its images would end after ``now``."""
    if start + timedelta(minutes=minutes) <= now:
        return start
    moved = now - timedelta(minutes=minutes + 1 + 50 * shifted)
    return moved.replace(second=0, microsecond=0)


def demo_studies(today: date | None = None, now: datetime | None = None) -> list[DemoStudy]:
    """The studies of :data:`STUDIES`, none of them ending after ``now``.

    Args:
        today: The reference day (default: today).
        now: No image is later than this (default: the end of ``today`` when it is given,
            the clock otherwise).
    """
    day0 = today or date.today()
    if now is None:
        now = datetime.combine(day0, time(23, 59, 59)) if today else datetime.now()
    studies: list[DemoStudy] = []
    shifted = 0
    for number, (patient_index, modality, protocol, days_ago, hour) in enumerate(STUDIES):
        study = DemoStudy(
            number,
            PATIENTS[patient_index],
            modality,
            protocol,
            datetime.combine(day0 - timedelta(days=days_ago), time(hour)),
        )
        start = _before(study.start, study.minutes, now, shifted)
        if start != study.start:
            shifted += 1
            study = DemoStudy(number, study.patient, modality, protocol, start)
        studies.append(study)
    return studies


def _typo(patient_id: str) -> str:
    """The Patient ID with its last two characters swapped, as a hurried tech types it."""
    return patient_id[:-2] + patient_id[-1] + patient_id[-2]


def _minutes_from(now: datetime, minutes: int) -> datetime:
    """``now`` plus ``minutes``, kept within ``now``'s day."""
    day = datetime.combine(now.date(), time())
    moment = now + timedelta(minutes=minutes)
    return max(day, min(moment, day + timedelta(hours=23, minutes=59))).replace(
        second=0, microsecond=0
    )


def desk_studies(studies: list[DemoStudy], now: datetime) -> list[DemoStudy]:
    """The studies of today's worklist that :data:`STUDIES` does not hold, and the stray one.

    Just after midnight a study may have to start yesterday: its images are never later than
    ``now``.
    """
    extra = [
        replace(study, start=_before(study.start, study.minutes, now, 0))
        for study in _desk_studies(len(studies), now)
    ]
    return extra


def _desk_studies(number: int, now: datetime) -> list[DemoStudy]:
    extra: list[DemoStudy] = []
    for _name, patient_index, modality, protocol, minutes, images, what in DESK_ORDERS:
        if images not in ("all", "first-series"):
            continue
        patient = PATIENTS[patient_index]
        start = _minutes_from(now, minutes)
        extra.append(
            DemoStudy(
                number,
                patient,
                modality,
                protocol,
                start,
                patient_id=_typo(patient[1]) if what == "id" else "",
                series_limit=1 if images == "first-series" else 0,
            )
        )
        number += 1
    patient_index, modality, protocol, minutes = DESK_STRAY
    extra.append(
        DemoStudy(number, PATIENTS[patient_index], modality, protocol, _minutes_from(now, minutes))
    )
    return extra


def demo_datasets(
    today: date | None = None,
    seed: int = 1,
    now: datetime | None = None,
    studies: list[DemoStudy] | None = None,
) -> Iterator[Dataset]:
    """Every instance of the demo archive, study after study.

    Args:
        today: The reference day (studies fall on it and up to four weeks before).
        seed: Changes every UID (two seeds give two disjoint archives).
        now: No image is later than this (see :func:`demo_studies`).
        studies: The studies to make (default: :func:`demo_studies`).
    """
    day0 = today or date.today()
    rng = np.random.default_rng(seed)
    for study in studies if studies is not None else demo_studies(today, now):
        yield from _study_datasets(study, day0, seed, rng)


def _study_datasets(
    study: DemoStudy, day0: date, seed: int, rng: np.random.Generator
) -> Iterator[Dataset]:
    number, modality, protocol_index = study.number, study.modality, study.protocol
    name, patient_id, birth, sex, charset = study.patient
    sop_class, protocols = PROTOCOLS[modality]
    description, body_part, series_list = protocols[protocol_index]
    if study.series_limit:
        series_list = series_list[: study.series_limit]
    study_day = study.start.strftime("%Y%m%d")
    study_uid = study.study_instance_uid(seed)
    frame_uid = _uid(seed, "frame", number)
    accession = study.accession_number(day0)
    for series_number, (series_description, images) in enumerate(series_list, start=1):
        series_uid = _uid(seed, "series", number, series_number)
        series_time = (study.start + timedelta(minutes=10 + series_number * 4)).strftime("%H%M%S")
        for image in range(1, images + 1):
            ds = Dataset()
            if charset:
                ds.SpecificCharacterSet = charset
            ds.ImageType = (
                ["ORIGINAL", "PRIMARY", "AXIAL"] if modality == "CT" else ["ORIGINAL", "PRIMARY"]
            )
            ds.SOPClassUID = sop_class
            ds.SOPInstanceUID = _uid(seed, "sop", number, series_number, image)
            ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_day
            ds.StudyTime = (study.start + timedelta(minutes=5)).strftime("%H%M%S")
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
            ds.PatientID = study.patient_id or patient_id
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
    now: datetime | None = None,
    worklist: bool = False,
) -> DemoSummary:
    """Generate the demo archive and store it through the normal ingest path.

    Args:
        config: Where the archive and index are.
        today: The reference day of the studies (default: today).
        seed: Varies the UIDs.
        ingestor: An ingestor to use (the console's node); a private one otherwise.
        progress: Called with the number of instances stored so far.
        now: No image is later than this (default: the end of ``today`` when it is given,
            the clock otherwise); today's orders are spread around it.
        worklist: Also fill today's worklist (orders, MPPS, their studies; see
            :data:`DESK_ORDERS`).
    """
    day0 = today or date.today()
    if now is None:
        now = datetime.combine(day0, time(23, 59, 59)) if today else datetime.now()
    studies = demo_studies(day0, now)
    extra = desk_studies(studies, now) if worklist else []
    own = ingestor is None
    ing = ingestor or Ingestor(config, use_database(config.effective_database_url))
    stored = 0
    try:
        # A few threads let the index writer commit several instances per transaction.
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="demo") as pool:
            made = demo_datasets(day0, seed, studies=studies + extra)
            blobs = (_encode(ds) for ds in made)
            for _ in pool.map(lambda blob: ing.store_bytes(blob, "DEMO"), blobs):
                stored += 1
                if progress is not None and stored % 20 == 0:
                    progress(stored)
    finally:
        if own:
            ing.close()
    if progress is not None:
        progress(stored)
    orders = fill_demo_worklist(config, studies, extra, now, day0, seed) if worklist else 0
    log.info("demo archive: %d instances stored, %d orders", stored, orders)
    return DemoSummary(
        patients=len({p for p, *_ in STUDIES}),
        studies=len(studies) + len(extra),
        instances=stored,
        orders=orders,
    )


def _references(study: DemoStudy, seed: int) -> list[tuple[str, str, str]]:
    """(series UID, SOP class, SOP instance) of every image of a demo study."""
    sop_class, protocols = PROTOCOLS[study.modality]
    series_list = protocols[study.protocol][2]
    if study.series_limit:
        series_list = series_list[: study.series_limit]
    return [
        (_uid(seed, "series", study.number, s), sop_class, _uid(seed, "sop", study.number, s, i))
        for s, (_description, images) in enumerate(series_list, start=1)
        for i in range(1, images + 1)
    ]


def _performed_series(references: list[tuple[str, str, str]]) -> list[Dataset]:
    """The Performed Series Sequence items (PS3.4 F.7.2.1) of these images, one per series."""
    items: dict[str, Dataset] = {}
    for series_uid, sop_class, sop_uid in references:
        item = items.get(series_uid)
        if item is None:
            item = items[series_uid] = Dataset()
            item.SeriesInstanceUID = series_uid
            item.PerformingPhysicianName = ""
            item.ProtocolName = ""
            item.OperatorsName = ""
            item.SeriesDescription = ""
            item.RetrieveAETitle = ""
            item.ReferencedImageSequence = []
            item.ReferencedNonImageCompositeSOPInstanceSequence = []
        ref = Dataset()
        ref.ReferencedSOPClassUID = sop_class
        ref.ReferencedSOPInstanceUID = sop_uid
        item.ReferencedImageSequence.append(ref)
    return list(items.values())


def fill_demo_worklist(
    config: Config,
    studies: list[DemoStudy],
    extra: list[DemoStudy],
    now: datetime,
    today: date,
    seed: int = 1,
) -> int:
    """Today's demo orders and their MPPS, over the studies :func:`fill_demo` stored.

    Args:
        config: Where the index is.
        studies: The demo's studies (:func:`demo_studies`).
        extra: The worklist's own studies (:func:`desk_studies`).
        now: Orders are spread around it.
        today: The demo's reference day (accession numbers derive from its year).
        seed: The seed the studies were made with.

    Returns:
        The number of orders created.
    """
    # Imported here: the worklist and MPPS services pull in the network stack.
    from tui_pacs.model import OrderFields
    from tui_pacs.net.mpps_scp import ProcedureStepRequest
    from tui_pacs.services.worklist import WorklistService

    service = WorklistService(config)
    made = iter(extra)
    count = 0
    for k, (name, patient_index, modality, protocol, minutes, images, what) in enumerate(
        DESK_ORDERS
    ):
        patient_name, patient_id, birth, sex, _charset = PATIENTS[patient_index]
        study: DemoStudy | None = None
        if images.startswith("study:"):
            study = studies[int(images.removeprefix("study:"))]
        elif images in ("all", "first-series"):
            study = next(made)
        start = study.start if study is not None else _minutes_from(now, minutes)
        if start.date() != now.date():
            start = datetime.combine(now.date(), time())  # the study moved to yesterday
        description = PROTOCOLS[modality][1][protocol][0]
        order = service.create(
            OrderFields(
                patient_name="OKONKWO^Chidi" if what == "name" else patient_name,
                patient_id=patient_id,
                patient_birth_date=birth,
                patient_sex=sex,
                accession_number=(
                    study.accession_number(today)
                    if study is not None
                    else f"W{now.year % 100:02d}{k + 1:05d}"
                ),
                requested_procedure_id=f"RP{k + 1:03d}",
                requested_procedure_description=description,
                scheduled_procedure_step_description=description,
                modality=modality,
                scheduled_station_ae_title=STATIONS[modality],
                scheduled_station_name=f"{modality} ROOM 1",
                scheduled_procedure_step_start_date=start.strftime("%Y%m%d"),
                scheduled_procedure_step_start_time=start.strftime("%H%M"),
                scheduled_performing_physician_name=REFERRERS[k % len(REFERRERS)],
                study_instance_uid=(
                    study.study_instance_uid(seed)
                    if study is not None
                    else _uid(seed, "order", name)
                ),
            )
        )
        count += 1
        if what == "arrived":
            service.mark_arrived(order.id)
        if what not in ("clean", "count", "noimg", "progress"):
            continue
        station = STATIONS[modality]
        step = Dataset()
        step.PatientName = order.patient_name
        step.PatientID = order.patient_id
        item = Dataset()
        item.StudyInstanceUID = order.study_instance_uid
        item.AccessionNumber = order.accession_number
        item.ScheduledProcedureStepID = order.scheduled_procedure_step_id
        item.RequestedProcedureID = order.requested_procedure_id
        step.ScheduledStepAttributesSequence = [item]
        step.PerformedProcedureStepID = f"PPS{k + 1:03d}"
        step.PerformedStationAETitle = station
        step.PerformedProcedureStepStartDate = start.strftime("%Y%m%d")
        step.PerformedProcedureStepStartTime = start.strftime("%H%M%S")
        step.PerformedProcedureStepStatus = "IN PROGRESS"
        step.Modality = modality
        step.PerformedSeriesSequence = []
        uid = service.create_step(ProcedureStepRequest(_uid(seed, "mpps", name), step, station))
        if what == "progress":
            continue
        references = _references(study, seed) if study is not None else []
        if what == "count":  # two images the modality made but never sent
            series_uid, sop_class, _sop = references[-1]
            references += [(series_uid, sop_class, _uid(seed, "unsent", n)) for n in (1, 2)]
        end = min(now, start + timedelta(minutes=30))
        final = Dataset()
        final.PerformedProcedureStepStatus = "COMPLETED"
        final.PerformedProcedureStepEndDate = end.strftime("%Y%m%d")
        final.PerformedProcedureStepEndTime = end.strftime("%H%M%S")
        final.PerformedSeriesSequence = _performed_series(references)
        service.update_step(ProcedureStepRequest(uid, final, station))
    return count
