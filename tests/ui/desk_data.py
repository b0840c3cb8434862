"""A small, frozen tech desk for the console tests: orders of TODAY, their images and MPPS."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from tests.store.synthetic import new_uid
from tests.ui.conftest import TODAY, store_config
from tests.worklist_data import BASE, archive_study, mpps_create, mpps_final
from tui_pacs.config import Config
from tui_pacs.model import WorklistOrder
from tui_pacs.net.mpps_scp import ProcedureStepRequest
from tui_pacs.services.ingest import Ingestor
from tui_pacs.services.worklist import WorklistService
from tui_pacs.store.db import use_database

DAY = TODAY.strftime("%Y%m%d")
#: The first order, scheduled TODAY; the others vary it.
ORDER = replace(BASE, scheduled_procedure_step_start_date=DAY, study_instance_uid="")


@dataclass
class Desk:
    """The desk's store: its config, services and orders by name."""

    config: Config
    service: WorklistService
    ingestor: Ingestor
    orders: dict[str, WorklistOrder]

    def images(self, order: WorklistOrder, **options: object) -> list[tuple[str, str]]:
        """Archive images for ``order`` through the normal ingest path (its Study UID)."""
        values: dict[str, object] = {
            "study_uid": order.study_instance_uid,
            "patient_id": order.patient_id,
            "patient_name": order.patient_name,
            "study_date": DAY,
            "modality": order.modality,
        }
        values.update(options)
        return archive_study(self.ingestor, **values)  # type: ignore[arg-type]

    def mpps(self, order: WorklistOrder, refs: list[tuple[str, str]]) -> None:
        """An MPPS of ``order`` created and completed, reporting ``refs``."""
        uid = self.service.create_step(
            ProcedureStepRequest(new_uid(), mpps_create(study_uid=order.study_instance_uid), "CT1")
        )
        self.service.update_step(ProcedureStepRequest(uid, mpps_final(instances=refs), "CT1"))


def make_desk(folder: Path, *, filled: bool = True) -> Desk:
    """A store with the desk's orders; ``filled`` adds their images, MPPS and a stray study.

    doe: 2 series / 4 images, MPPS completed with 4 (clean); roe: images under another
    Patient ID (flag ID); smith: MR, scheduled, nothing yet; lee: MPPS completed, no image
    (flag NOIMG); and a study of STRAY^SAM that matches no order.
    """
    config = store_config(folder)
    db = use_database(config.effective_database_url)
    service = WorklistService(config, db)
    ingestor = Ingestor(config, db)
    orders = {
        "doe": service.create(ORDER),
        "roe": service.create(
            replace(
                ORDER, patient_name="ROE^RICHARD", patient_id="P2", accession_number="A2",
                scheduled_procedure_step_id="S2", scheduled_procedure_step_start_time="1100",
                requested_procedure_description="CT chest",
            )
        ),
        "smith": service.create(
            replace(
                ORDER, patient_name="SMITH^ANNA", patient_id="P3", accession_number="A3",
                scheduled_procedure_step_id="S3", modality="MR", scheduled_station_ae_title="MR1",
                scheduled_procedure_step_start_time="1300",
                requested_procedure_description="MR knee",
            )
        ),
        "lee": service.create(
            replace(
                ORDER, patient_name="LEE^KIM", patient_id="P4", accession_number="A4",
                scheduled_procedure_step_id="S4", modality="US", scheduled_station_ae_title="US1",
                scheduled_procedure_step_start_time="1500",
                requested_procedure_description="US abdomen",
            )
        ),
    }  # fmt: skip
    desk = Desk(config, service, ingestor, orders)
    if filled:
        refs = desk.images(orders["doe"], series=2, per_series=2)
        desk.mpps(orders["doe"], refs)
        desk.images(orders["roe"], patient_id="P9", per_series=3)
        desk.mpps(orders["lee"], [])
        archive_study(
            ingestor, study_uid=new_uid(), accession="X9", patient_id="P7",
            patient_name="STRAY^SAM", study_date=DAY,
        )  # fmt: skip
    return desk


def add_name_and_count(desk: Desk) -> Desk:
    """Two more orders with their images: kim's carry another Patient Name (flag NAME); park's
    MPPS reports three images where two arrived (flag COUNT). Their Study Instance UIDs are
    fixed: the wide snapshot shows the newest study's tags."""
    service = desk.service
    kim = service.create(
        replace(
            ORDER, patient_name="KIM^LEE", patient_id="P5", accession_number="A5",
            scheduled_procedure_step_id="S5", scheduled_procedure_step_start_time="1600",
            requested_procedure_description="CT sinus",
            study_instance_uid="1.2.826.0.1.3680043.8.498.60005",
        )
    )  # fmt: skip
    park = service.create(
        replace(
            ORDER, patient_name="PARK^JUN", patient_id="P6", accession_number="A6",
            scheduled_procedure_step_id="S6", scheduled_procedure_step_start_time="1700",
            requested_procedure_description="CT spine",
            study_instance_uid="1.2.826.0.1.3680043.8.498.60006",
        )
    )  # fmt: skip
    desk.orders.update(kim=kim, park=park)
    desk.images(kim, patient_name="KIM^LI", per_series=2)
    refs = desk.images(park, per_series=2)
    desk.mpps(park, [*refs, (refs[0][0], new_uid())])
    return desk
