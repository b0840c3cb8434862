"""Orders, MPPS data sets and archived studies for the tech desk tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage

from tests.store.synthetic import make_dataset, new_uid, to_bytes
from tui_pacs.model import OrderFields
from tui_pacs.services.ingest import Ingestor

#: A valid order; tests replace the fields they care about.
BASE = OrderFields(
    patient_name="DOE^JOHN",
    patient_id="P1",
    patient_birth_date="19700101",
    patient_sex="M",
    accession_number="A1",
    requested_procedure_id="RP1",
    requested_procedure_description="CT head",
    scheduled_procedure_step_id="S1",
    scheduled_procedure_step_description="CT head without contrast",
    modality="CT",
    scheduled_station_ae_title="CT1",
    scheduled_station_name="CT ROOM 1",
    scheduled_procedure_step_start_date="20240501",
    scheduled_procedure_step_start_time="0930",
    scheduled_performing_physician_name="HOUSE^GREGORY",
)

#: The worklist of the MWL tests: (name, fields). Stations, dates, times, modalities and names
#: differ so that every matching key selects a different subset.
WORKLIST: tuple[tuple[str, OrderFields], ...] = (
    ("doe", BASE),
    (
        "roe",
        replace(
            BASE,
            patient_name="ROE^RICHARD",
            patient_id="P2",
            accession_number="A2",
            scheduled_procedure_step_id="S2",
            scheduled_procedure_step_start_time="1415",
            scheduled_performing_physician_name="WHO^JOHN",
        ),
    ),
    (
        "mr",
        replace(
            BASE,
            patient_name="SMITH^ANNA",
            patient_id="P3",
            accession_number="A3",
            scheduled_procedure_step_id="S3",
            modality="MR",
            scheduled_station_ae_title="MR1",
            scheduled_station_name="MR ROOM",
            requested_procedure_description="MR knee",
            scheduled_procedure_step_start_date="20240502",
            scheduled_procedure_step_start_time="0800",
        ),
    ),
    (
        "us",
        replace(
            BASE,
            patient_name="SMITHERS^WAYLON",
            patient_id="P4",
            accession_number="B4",
            scheduled_procedure_step_id="S4",
            modality="US",
            scheduled_station_ae_title="US1",
            scheduled_station_name="US ROOM",
            requested_procedure_description="US abdomen",
            scheduled_procedure_step_start_date="20240503",
            scheduled_procedure_step_start_time="1600",
            patient_sex="F",
        ),
    ),
    (
        "ct2",
        replace(
            BASE,
            patient_name="DOE^JANE",
            patient_id="P5",
            accession_number="A5",
            scheduled_procedure_step_id="S5",
            scheduled_procedure_step_start_date="20240502",
            scheduled_procedure_step_start_time="1100",
            patient_sex="F",
        ),
    ),
)


def archive_study(
    ingestor: Ingestor,
    *,
    study_uid: str,
    accession: str = "",
    patient_id: str = "P1",
    patient_name: str = "DOE^JOHN",
    series: int = 1,
    per_series: int = 1,
    study_date: str = "20240501",
    modality: str = "CT",
    calling: str = "CT1",
) -> list[tuple[str, str]]:
    """Archive a small study; returns ``(SOP class, SOP instance)`` of each instance."""
    made: list[tuple[str, str]] = []
    for s in range(series):
        series_uid = new_uid()
        for n in range(per_series):
            ds = make_dataset(
                patient_id=patient_id,
                patient_name=patient_name,
                study_uid=study_uid,
                series_uid=series_uid,
                modality=modality,
                instance_number=n + 1,
                series_number=s + 1,
            )
            ds.AccessionNumber = accession
            ds.StudyDate = study_date
            ingestor.store_bytes(to_bytes(ds), calling_ae_title=calling)
            made.append((str(ds.SOPClassUID), str(ds.SOPInstanceUID)))
    return made


def mpps_create(
    *,
    study_uid: str,
    accession: str = "",
    sps_id: str = "",
    status: str = "IN PROGRESS",
    patient_id: str = "P1",
    patient_name: str = "DOE^JOHN",
) -> Dataset:
    """An MPPS N-CREATE attribute list (PS3.4 F.7.2.1) for one scheduled step."""
    ds = Dataset()
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    item = Dataset()
    item.StudyInstanceUID = study_uid
    item.AccessionNumber = accession
    item.ScheduledProcedureStepID = sps_id
    item.RequestedProcedureID = ""
    ds.ScheduledStepAttributesSequence = [item]
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "CT1"
    ds.PerformedProcedureStepStartDate = "20240501"
    ds.PerformedProcedureStepStartTime = "093500"
    ds.PerformedProcedureStepStatus = status
    ds.Modality = "CT"
    ds.PerformedSeriesSequence = []
    return ds


def mpps_final(
    status: str = "COMPLETED",
    instances: Sequence[tuple[str, str]] = (),
    series_uid: str | None = None,
) -> Dataset:
    """An N-SET modification list ending the step, referencing ``instances`` in one series."""
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20240501"
    ds.PerformedProcedureStepEndTime = "100000"
    series = Dataset()
    series.SeriesInstanceUID = series_uid or new_uid()
    series.PerformingPhysicianName = ""
    series.ProtocolName = "HEAD"
    series.OperatorsName = ""
    series.SeriesDescription = "head"
    series.RetrieveAETitle = ""
    refs = []
    for sop_class, sop_uid in instances:
        ref = Dataset()
        ref.ReferencedSOPClassUID = sop_class or CTImageStorage
        ref.ReferencedSOPInstanceUID = sop_uid
        refs.append(ref)
    series.ReferencedImageSequence = refs
    series.ReferencedNonImageCompositeSOPInstanceSequence = []
    ds.PerformedSeriesSequence = [series] if refs else []
    if status == "DISCONTINUED":
        reason = Dataset()
        reason.CodeValue = "110514"
        reason.CodingSchemeDesignator = "DCM"
        reason.CodeMeaning = "Incorrect worklist entry selected"
        ds.PerformedProcedureStepDiscontinuationReasonCodeSequence = [reason]
    return ds
