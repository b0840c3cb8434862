"""Fill an index with many synthetic studies straight through Peewee (no files, no DICOM parsing).

For benchmarks of what reads the index (the console, C-FIND): 100,000 studies load in well under a
minute on SQLite. Rows look like what ingest writes: patients with decoded and case-folded names,
studies with dates over ten years, ModalitiesInStudy, counts; one to three series per study. No
instance rows and no archive files are made, so nothing can be retrieved or opened.

    from bench.bulkload import bulk_load
    bulk_load("sqlite:////tmp/bench/index.sqlite3", studies=100_000)
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tui_pacs.store.db import open_database  # noqa: E402
from tui_pacs.store.models import Patient, Series, Study, utcnow  # noqa: E402

FAMILY = (
    "SMITH",
    "JOHNSON",
    "WILLIAMS",
    "BROWN",
    "JONES",
    "GARCIA",
    "MILLER",
    "DAVIS",
    "RODRIGUEZ",
    "MARTINEZ",
    "HERNANDEZ",
    "LOPEZ",
    "GONZALEZ",
    "WILSON",
    "ANDERSON",
    "THOMAS",
    "TAYLOR",
    "MOORE",
    "JACKSON",
    "MARTIN",
    "LEE",
    "PEREZ",
    "THOMPSON",
    "WHITE",
    "HARRIS",
    "SANCHEZ",
    "CLARK",
    "RAMIREZ",
    "LEWIS",
    "ROBINSON",
    "WALKER",
    "YOUNG",
    "ALLEN",
    "KING",
    "WRIGHT",
    "SCOTT",
    "TORRES",
    "NGUYEN",
    "HILL",
    "FLORES",
    "GREEN",
    "ADAMS",
    "NELSON",
    "BAKER",
    "HALL",
    "RIVERA",
    "CAMPBELL",
    "MITCHELL",
    "CARTER",
    "ROBERTS",
    "MÜLLER",
    "SCHMIDT",
    "SCHNEIDER",
    "FISCHER",
    "WEBER",
    "MEYER",
    "WAGNER",
    "BECKER",
    "SCHULZ",
    "HOFFMANN",
    "DUBOIS",
    "MOREAU",
    "LAURENT",
    "ROSSI",
    "RUSSO",
    "FERRARI",
    "ESPOSITO",
    "BIANCHI",
    "KOWALSKI",
    "NOWAK",
    "WIŚNIEWSKI",
    "JOHANSSON",
    "ANDERSSON",
    "NIELSEN",
    "HANSEN",
    "TANAKA",
    "SATO",
    "SUZUKI",
    "WATANABE",
    "OKONKWO",
    "ADEYEMI",
    "PATEL",
    "SHARMA",
    "SINGH",
    "KUMAR",
    "O'BRIEN",
    "MURPHY",
    "KELLY",
)
GIVEN = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Betty",
    "Mark",
    "Margaret",
    "Jürgen",
    "Anna",
    "Erik",
    "Giulia",
    "Camille",
    "Piotr",
    "Yuki",
    "Siobhan",
    "Anjali",
    "Chinedu",
    "María",
    "José",
    "Lan",
    "Wei",
    "Fatima",
    "Omar",
    "Ingrid",
    "Sven",
    "Akira",
    "Priya",
    "Kwame",
    "Aoife",
)
#: (modality, study descriptions, weight)
MODALITIES = (
    ("CT", ("CT CHEST", "CT HEAD", "CT ABDOMEN PELVIS", "CT ANGIO"), 30),
    ("MR", ("MR BRAIN", "MR KNEE", "MR LUMBAR SPINE", "MR SHOULDER"), 20),
    ("CR", ("XR CHEST 2 VIEWS", "XR HAND", "XR KNEE"), 20),
    ("DX", ("XR CHEST PA", "XR PELVIS"), 10),
    ("US", ("US ABDOMEN", "US THYROID", "US OB"), 12),
    ("MG", ("MAMMO SCREENING",), 4),
    ("NM", ("NM BONE SCAN",), 2),
    ("PT", ("PET CT WHOLE BODY",), 2),
)
UID_ROOT = "1.2.826.0.1.3680043.8.498.9"


@dataclass(frozen=True, slots=True)
class BulkSummary:
    """What :func:`bulk_load` wrote and how long it took."""

    patients: int
    studies: int
    series: int
    seconds: float


def bulk_load(
    database_url: str,
    *,
    studies: int = 100_000,
    studies_per_patient: float = 2.0,
    seed: int = 1,
    today: date | None = None,
    years: int = 10,
    chunk: int = 2000,
) -> BulkSummary:
    """Add ``studies`` synthetic studies (and their patients and series) to an index.

    Args:
        database_url: The index (``sqlite:///...`` or ``postgresql://...``); tables are created.
        studies: How many studies.
        studies_per_patient: Average studies of one patient.
        seed: Same seed, same rows (UIDs carry the seed, so two seeds never collide).
        today: The newest study date; studies spread over ``years`` before it.
        years: How far back study dates go.
        chunk: Rows per INSERT statement.
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    db = open_database(database_url)
    day0 = today or date.today()
    span = years * 365
    now = utcnow()
    weights = [w for *_rest, w in MODALITIES]
    n_patients = max(1, int(studies / studies_per_patient))
    patient_rows = []
    for i in range(n_patients):
        name = f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}"
        patient_rows.append(
            {
                "patient_id": f"P{seed:02d}{i:08d}",
                "issuer_of_patient_id": "",
                "patient_name": name,
                "patient_name_norm": name.casefold(),
                "patient_birth_date": f"{rng.randint(1930, 2020)}{rng.randint(1, 12):02d}"
                f"{rng.randint(1, 28):02d}",
                "patient_sex": rng.choice("MFO"),
                "created_at": now,
                "updated_at": now,
            }
        )
    with db.atomic():
        for start in range(0, len(patient_rows), chunk):
            Patient.insert_many(patient_rows[start : start + chunk]).execute()
    ids = [
        p.id
        for p in Patient.select(Patient.id)
        .where(Patient.patient_id.startswith(f"P{seed:02d}"))
        .order_by(Patient.id)
    ]
    series_total = 0
    patient_counts: dict[int, list[int]] = {}
    for start in range(0, studies, chunk):
        study_rows = []
        series_plan: list[tuple[str, str, list[tuple[str, int]]]] = []
        for n in range(start, min(studies, start + chunk)):
            modality, descriptions, _w = rng.choices(MODALITIES, weights)[0]
            extra = ["SR"] if rng.random() < 0.1 else []
            day = (day0 - timedelta(days=rng.randint(0, span))).strftime("%Y%m%d")
            uid = f"{UID_ROOT}.{seed}.{n + 1}"
            n_series = rng.randint(1, 3)
            images = [rng.randint(1, 300) for _ in range(n_series)]
            patient = ids[rng.randrange(len(ids))]
            counts = patient_counts.setdefault(patient, [0, 0, 0])
            counts[0] += 1
            counts[1] += n_series + len(extra)
            counts[2] += sum(images) + len(extra)
            study_rows.append(
                {
                    "patient": patient,
                    "study_instance_uid": uid,
                    "study_date": day,
                    "study_time": f"{rng.randint(7, 19):02d}{rng.randint(0, 59):02d}00",
                    "accession_number": f"A{seed:02d}{n + 1:08d}",
                    "study_id": str(n + 1),
                    "study_description": rng.choice(descriptions),
                    "referring_physician_name": f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}",
                    "referring_physician_name_norm": "",
                    "institution_name": "Bench Hospital",
                    "modalities_in_study": "\\".join(sorted([modality, *extra])),
                    "sop_classes_in_study": "",
                    "number_of_study_related_series": n_series + len(extra),
                    "number_of_study_related_instances": sum(images) + len(extra),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            plan = [(modality, count) for count in images] + [("SR", 1) for _ in extra]
            series_plan.append((uid, day, plan))
        with db.atomic():
            Study.insert_many(study_rows).execute()
            by_uid = {
                s.study_instance_uid: s.id
                for s in Study.select(Study.id, Study.study_instance_uid).where(
                    Study.study_instance_uid.in_([r["study_instance_uid"] for r in study_rows])
                )
            }
            series_rows = []
            for uid, day, plan in series_plan:
                for number, (modality, count) in enumerate(plan, start=1):
                    series_rows.append(
                        {
                            "study": by_uid[uid],
                            "series_instance_uid": f"{uid}.{number}",
                            "modality": modality,
                            "series_number": number,
                            "series_description": f"{modality} series {number}",
                            "series_date": day,
                            "number_of_series_related_instances": count,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
            for s in range(0, len(series_rows), chunk):
                Series.insert_many(series_rows[s : s + chunk]).execute()
            series_total += len(series_rows)
    with db.atomic():
        for patient, (n_studies, n_series, n_images) in patient_counts.items():
            Patient.update(
                number_of_patient_related_studies=Patient.number_of_patient_related_studies
                + n_studies,
                number_of_patient_related_series=Patient.number_of_patient_related_series
                + n_series,
                number_of_patient_related_instances=Patient.number_of_patient_related_instances
                + n_images,
            ).where(Patient.id == patient).execute()
    if database_url.startswith("sqlite"):
        db.execute_sql("ANALYZE")
    else:
        db.execute_sql("ANALYZE")
    db.close()
    return BulkSummary(n_patients, studies, series_total, time.perf_counter() - started)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(bulk_load(args.database_url, studies=args.studies, seed=args.seed))
