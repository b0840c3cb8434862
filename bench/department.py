"""Today's department on top of a bulk-loaded index: orders, their images, MPPS, stray studies.

For the worklist figures of ``bench/console.py``: a busy day of ~300 Scheduled Procedure Steps
(fixed seed), added to an index that already holds 100,000 studies (``bench/bulkload.py``).
Everything goes through the same services the node uses: orders through
:class:`~tui_pacs.services.worklist.WorklistService`, images through the
:class:`~tui_pacs.services.ingest.Ingestor` (files, index rows, change feed), MPPS through the
MPPS SCP's N-CREATE / N-SET calls, then one ``settle`` as the node runs it.

What the day holds (of ``orders``, in these proportions):

- 65% received with the order's Study Instance UID (the modality copied it from the worklist),
  15% received under another Study Instance UID with the order's Accession Number;
- of those, about 3% carry another Patient ID and 3% another Patient Name;
- 20% not received yet (scheduled later in the day);
- MPPS for half of the orders: most completed with the count received, some with another count,
  a few completed with no image at all, some still in progress;
- ``stray`` studies of today that match no order.

Returning patients (two out of three orders) are patients of the bulk index, with their name.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.store.synthetic import make_dataset, new_uid, to_bytes  # noqa: E402
from tests.worklist_data import BASE, mpps_create, mpps_final  # noqa: E402
from tui_pacs.config import Config  # noqa: E402
from tui_pacs.model import OrderFields  # noqa: E402
from tui_pacs.net.mpps_scp import ProcedureStepRequest  # noqa: E402
from tui_pacs.services.ingest import Ingestor  # noqa: E402
from tui_pacs.services.worklist import WorklistService, today  # noqa: E402
from tui_pacs.store.models import Patient  # noqa: E402

#: (modality, station AE, procedure) of the day's rooms.
ROOMS = (
    ("CT", "CT1", "CT head"),
    ("CT", "CT2", "CT chest abdomen pelvis"),
    ("MR", "MR1", "MR knee"),
    ("MR", "MR2", "MR brain"),
    ("US", "US1", "US abdomen"),
    ("CR", "CR1", "Chest 2 views"),
    ("CR", "CR2", "Hand"),
    ("NM", "NM1", "Bone scan"),
)


@dataclass
class Department:
    """What :func:`fill_department` made (ids and UIDs the benchmark drives)."""

    orders: list[int] = field(default_factory=list)
    #: Order id -> (Study Instance UID its images carry, Patient ID, Patient Name, modality,
    #: station) of the orders received so far.
    received: dict[int, tuple[str, str, str, str, str]] = field(default_factory=dict)
    #: Orders with no image yet: id -> (Study Instance UID, Patient ID, name, modality, station).
    waiting: dict[int, tuple[str, str, str, str, str]] = field(default_factory=dict)
    stray: list[str] = field(default_factory=list)
    instances: int = 0
    seconds: float = 0.0


def store_instance(
    ingestor: Ingestor,
    *,
    study_uid: str,
    series_uid: str,
    patient_id: str,
    patient_name: str,
    modality: str,
    station: str,
    accession: str = "",
    number: int = 1,
    study_date: str = "",
) -> tuple[str, str]:
    """Archive one small image-less instance of today; returns (SOP class, SOP instance)."""
    ds = make_dataset(
        patient_id=patient_id,
        patient_name=patient_name,
        study_uid=study_uid,
        series_uid=series_uid,
        modality="MR" if modality == "MR" else "CT",
        instance_number=number,
    )
    ds.Modality = modality
    ds.AccessionNumber = accession
    ds.StudyDate = study_date or today()
    ingestor.store_bytes(to_bytes(ds), calling_ae_title=station)
    return str(ds.SOPClassUID), str(ds.SOPInstanceUID)


def fill_department(
    config: Config, *, orders: int = 300, stray: int = 20, seed: int = 7
) -> Department:
    """Add today's orders, images and MPPS to the index of ``config`` (see the module)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    day = today()
    ingestor = Ingestor(config)
    service = WorklistService(config, ingestor.db)
    made = Department()
    try:
        known = list(
            Patient.select(Patient.patient_id, Patient.patient_name)
            .where(Patient.patient_id.startswith("P01"))
            .order_by(Patient.id)
            .limit(20_000)
            .tuples()
        )
        fields: list[OrderFields] = []
        for n in range(orders):
            modality, station, procedure = ROOMS[n % len(ROOMS)]
            if known and rng.random() < 2 / 3:
                patient_id, name = known[rng.randrange(len(known))]
            else:
                patient_id, name = f"D{seed:02d}{n:06d}", f"NEW^PATIENT{n}"
            minutes = 7 * 60 + (n * 12 * 60) // orders
            fields.append(
                replace(
                    BASE,
                    patient_name=name,
                    patient_id=patient_id,
                    accession_number=f"W{seed:02d}{n:06d}",
                    requested_procedure_id=f"RP{n}",
                    requested_procedure_description=procedure,
                    scheduled_procedure_step_id=f"S{n}",
                    scheduled_procedure_step_description=procedure,
                    modality=modality,
                    scheduled_station_ae_title=station,
                    scheduled_station_name=station,
                    scheduled_procedure_step_start_date=day,
                    scheduled_procedure_step_start_time=f"{minutes // 60:02d}{minutes % 60:02d}",
                )
            )
        created = [service.create(f) for f in fields]
        made.orders = [o.id for o in created]
        for n, order in enumerate(created):
            pick = rng.random()
            if pick >= 0.80:
                made.waiting[order.id] = (
                    order.study_instance_uid, order.patient_id, order.patient_name,
                    order.modality, order.scheduled_station_ae_title,
                )  # fmt: skip
                continue
            by_accession = pick >= 0.65
            study_uid = new_uid() if by_accession else order.study_instance_uid
            patient_id, name = order.patient_id, order.patient_name
            odd = rng.random()
            if odd < 0.03:
                patient_id = f"X{n:06d}"
            elif odd < 0.06 and patient_id.startswith("D"):
                name = name.replace("PATIENT", "PATIENTE")
            refs: list[tuple[str, str]] = []
            for s in range(rng.randint(1, 2)):
                series_uid = new_uid()
                for i in range(rng.randint(1, 3)):
                    refs.append(
                        store_instance(
                            ingestor,
                            study_uid=study_uid,
                            series_uid=series_uid,
                            patient_id=patient_id,
                            patient_name=name,
                            modality=order.modality,
                            station=order.scheduled_station_ae_title,
                            accession=order.accession_number,
                            number=s * 10 + i + 1,
                        )
                    )
            made.instances += len(refs)
            made.received[order.id] = (
                study_uid,
                patient_id,
                name,
                order.modality,
                order.scheduled_station_ae_title,
            )
            mpps = rng.random()
            if mpps < 0.5:
                step = service.create_step(
                    ProcedureStepRequest(
                        new_uid(),
                        mpps_create(study_uid=order.study_instance_uid, patient_id=patient_id),
                        order.scheduled_station_ae_title,
                    )
                )
                if mpps < 0.42:
                    reported = refs if mpps < 0.36 else [*refs, ("", new_uid())]
                    service.update_step(
                        ProcedureStepRequest(step, mpps_final(instances=reported), "")
                    )
        # A few orders MPPS completed without any image reaching us.
        for order_id in list(made.waiting)[:5]:
            uid = made.waiting[order_id][0]
            step = service.create_step(
                ProcedureStepRequest(new_uid(), mpps_create(study_uid=uid), "CT1")
            )
            service.update_step(
                ProcedureStepRequest(step, mpps_final(instances=[("", new_uid())]), "")
            )
            del made.waiting[order_id]
        for n in range(stray):
            uid = new_uid()
            modality, station, _p = ROOMS[n % len(ROOMS)]
            store_instance(
                ingestor,
                study_uid=uid,
                series_uid=new_uid(),
                patient_id=f"Z{seed:02d}{n:06d}",
                patient_name=f"STRAY^PATIENT{n}",
                modality=modality,
                station=station,
                accession=f"Z{n:06d}",
            )
            made.stray.append(uid)
            made.instances += 1
        service.settle()
    finally:
        ingestor.close()
        ingestor.db.close()
    made.seconds = time.perf_counter() - started
    return made
