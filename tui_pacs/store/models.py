"""Peewee models of the index: the patient/study/series/instance hierarchy and the change feed.

Column names are DICOM keywords in snake_case. Every attribute a Patient Root or Study Root C-FIND
SCP must match or return at its level (PS3.4 C.6.1.1, C.6.2.1) has a column; person names keep
their decoded text plus a case-folded copy (``*_norm``) that the matcher uses.
"""

from __future__ import annotations

from datetime import UTC, datetime

import peewee as pw

database_proxy = pw.DatabaseProxy()


def utcnow() -> datetime:
    """Naive UTC now (both SQLite and PostgreSQL store it the same way)."""
    return datetime.now(UTC).replace(tzinfo=None)


class BaseModel(pw.Model):
    # Declared (peewee would add it anyway) so type checkers know every row has an ``id``.
    id = pw.AutoField()

    class Meta:
        database = database_proxy
        legacy_table_names = False


class Patient(BaseModel):
    """A patient, identified by Patient ID within its issuer (PS3.4 C.6.1.1.2)."""

    patient_id = pw.CharField(max_length=64, index=True)
    issuer_of_patient_id = pw.CharField(max_length=64, default="")
    patient_name = pw.CharField(max_length=324, default="")
    patient_name_norm = pw.CharField(max_length=324, default="", index=True)
    patient_birth_date = pw.CharField(max_length=8, default="")
    patient_sex = pw.CharField(max_length=16, default="")
    number_of_patient_related_studies = pw.IntegerField(default=0)
    number_of_patient_related_series = pw.IntegerField(default=0)
    number_of_patient_related_instances = pw.IntegerField(default=0)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("patient_id", "issuer_of_patient_id"), True),)


class Study(BaseModel):
    """A study (PS3.4 C.6.2.1.2 keys plus the optional ones people query)."""

    patient = pw.ForeignKeyField(Patient, backref="studies", on_delete="CASCADE")
    study_instance_uid = pw.CharField(max_length=64, unique=True)
    study_date = pw.CharField(max_length=8, default="", index=True)
    study_time = pw.CharField(max_length=16, default="")
    accession_number = pw.CharField(max_length=16, default="", index=True)
    study_id = pw.CharField(max_length=16, default="")
    study_description = pw.CharField(max_length=64, default="")
    referring_physician_name = pw.CharField(max_length=324, default="")
    referring_physician_name_norm = pw.CharField(max_length=324, default="")
    patient_age = pw.CharField(max_length=4, default="")
    institution_name = pw.CharField(max_length=64, default="")
    #: Backslash-separated, sorted, e.g. ``CT\SR``.
    modalities_in_study = pw.CharField(max_length=256, default="")
    sop_classes_in_study = pw.TextField(default="")
    number_of_study_related_series = pw.IntegerField(default=0)
    number_of_study_related_instances = pw.IntegerField(default=0)
    created_at = pw.DateTimeField(default=utcnow)
    #: Time of the last instance received; stable-study detection uses it.
    updated_at = pw.DateTimeField(default=utcnow, index=True)


class Series(BaseModel):
    """A series (PS3.4 C.6.2.1.3 keys plus the optional ones people query)."""

    study = pw.ForeignKeyField(Study, backref="series", on_delete="CASCADE")
    series_instance_uid = pw.CharField(max_length=64, unique=True)
    modality = pw.CharField(max_length=16, default="", index=True)
    series_number = pw.IntegerField(null=True)
    series_description = pw.CharField(max_length=64, default="")
    body_part_examined = pw.CharField(max_length=16, default="")
    series_date = pw.CharField(max_length=8, default="")
    series_time = pw.CharField(max_length=16, default="")
    performed_procedure_step_start_date = pw.CharField(max_length=8, default="")
    performed_procedure_step_start_time = pw.CharField(max_length=16, default="")
    protocol_name = pw.CharField(max_length=64, default="")
    station_name = pw.CharField(max_length=16, default="")
    number_of_series_related_instances = pw.IntegerField(default=0)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)


class Instance(BaseModel):
    """One archived SOP instance and the file that holds it."""

    series = pw.ForeignKeyField(Series, backref="instances", on_delete="CASCADE")
    sop_instance_uid = pw.CharField(max_length=64, unique=True)
    sop_class_uid = pw.CharField(max_length=64, default="")
    instance_number = pw.IntegerField(null=True)
    content_date = pw.CharField(max_length=8, default="")
    content_time = pw.CharField(max_length=16, default="")
    rows = pw.IntegerField(null=True)
    columns = pw.IntegerField(null=True)
    number_of_frames = pw.IntegerField(null=True)
    specific_character_set = pw.CharField(max_length=128, default="")
    transfer_syntax_uid = pw.CharField(max_length=64)
    #: Path of the file relative to the storage folder.
    path = pw.CharField(max_length=512)
    size = pw.BigIntegerField()
    #: SHA-256 of the whole file, hex.
    checksum = pw.CharField(max_length=64)
    received_at = pw.DateTimeField(default=utcnow)
    calling_ae_title = pw.CharField(max_length=16, default="")


class Change(BaseModel):
    """Append-only change feed: consoles poll it by last id to learn what happened."""

    kind = pw.CharField(max_length=32)
    uid = pw.CharField(max_length=64, default="")
    at = pw.DateTimeField(default=utcnow)


class RemoteNodeRow(BaseModel):
    """A remote AE in the node registry (merged with the config file's [[nodes]])."""

    name = pw.CharField(max_length=64, unique=True)
    ae_title = pw.CharField(max_length=16, index=True)
    host = pw.CharField(max_length=255)
    port = pw.IntegerField()
    description = pw.CharField(max_length=255, default="")
    #: Comma-separated DimseService values this AE may use when it calls us.
    allowed_services = pw.CharField(
        max_length=64, default="echo,find,move,get,store,mwl,mpps,commit"
    )
    #: "move" or "get".
    retrieve_method = pw.CharField(max_length=8, default="move")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "remote_node"


class NodeEchoRow(BaseModel):
    """The last C-ECHO sent to a registry node, by node name (config and database nodes alike)."""

    node_name = pw.CharField(max_length=64, unique=True)
    at = pw.DateTimeField(default=utcnow)
    ok = pw.BooleanField()
    latency_ms = pw.FloatField(null=True)
    status = pw.IntegerField(null=True)
    message = pw.CharField(max_length=255, default="")

    class Meta:
        table_name = "node_echo"


class Job(BaseModel):
    """Queued long work (retrieve, send ...) that the node's job runner executes."""

    kind = pw.CharField(max_length=16, index=True)
    #: queued, running, completed, failed, cancelled
    state = pw.CharField(max_length=16, index=True, default="queued")
    #: JSON parameters of the job (node, level, UIDs, paths ...).
    params = pw.TextField(default="{}")
    node_name = pw.CharField(max_length=64, default="")
    description = pw.CharField(max_length=255, default="")
    total = pw.IntegerField(null=True)
    completed = pw.IntegerField(default=0)
    failed = pw.IntegerField(default=0)
    warning = pw.IntegerField(default=0)
    remaining = pw.IntegerField(null=True)
    #: Last DIMSE status code seen (final response status when the job ended).
    last_status = pw.IntegerField(null=True)
    error = pw.TextField(default="")
    #: Backslash-separated SOP Instance UIDs that failed (Failed SOP Instance UID List).
    failed_uids = pw.TextField(default="")
    cancel_requested = pw.BooleanField(default=False)
    attempts = pw.IntegerField(default=0)
    #: Node process running it ("host-pid"), empty while queued.
    owner = pw.CharField(max_length=128, default="")
    created_at = pw.DateTimeField(default=utcnow, index=True)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)
    updated_at = pw.DateTimeField(default=utcnow)


class NodeHeartbeat(BaseModel):
    """One row per running node process, refreshed every few seconds (consoles read it)."""

    node_id = pw.CharField(max_length=128, unique=True)
    ae_title = pw.CharField(max_length=16)
    host = pw.CharField(max_length=255)
    pid = pw.IntegerField()
    port = pw.IntegerField()
    started_at = pw.DateTimeField(default=utcnow)
    seen_at = pw.DateTimeField(default=utcnow, index=True)
    associations = pw.IntegerField(default=0)
    last_instance_at = pw.DateTimeField(null=True)
    jobs_running = pw.IntegerField(default=0)


class WorklistItem(BaseModel):
    """An order: one Scheduled Procedure Step of the Modality Worklist (PS3.4 K.6.1.2).

    Columns are the DICOM keywords of the MWL information model in snake_case; the person names
    keep a case-folded copy (``*_norm``) for matching without regard to case, as the Q/R index
    does. ``status`` is the tech desk's view of the step: scheduled, arrived, in progress,
    completed or discontinued (MPPS and arriving images move it along).
    """

    id = pw.AutoField()
    patient_name = pw.CharField(max_length=324, default="")
    patient_name_norm = pw.CharField(max_length=324, default="", index=True)
    patient_id = pw.CharField(max_length=64, default="", index=True)
    patient_birth_date = pw.CharField(max_length=8, default="")
    patient_sex = pw.CharField(max_length=16, default="")
    accession_number = pw.CharField(max_length=16, default="", index=True)
    requested_procedure_id = pw.CharField(max_length=16, default="")
    requested_procedure_description = pw.CharField(max_length=64, default="")
    #: Requested Procedure Code Sequence (0032,1064), its one item's code.
    requested_procedure_code_value = pw.CharField(max_length=16, default="")
    requested_procedure_coding_scheme_designator = pw.CharField(max_length=16, default="")
    requested_procedure_code_meaning = pw.CharField(max_length=64, default="")
    study_instance_uid = pw.CharField(max_length=64, index=True)
    scheduled_procedure_step_id = pw.CharField(max_length=16, default="", index=True)
    scheduled_procedure_step_description = pw.CharField(max_length=64, default="")
    modality = pw.CharField(max_length=16, default="", index=True)
    scheduled_station_ae_title = pw.CharField(max_length=16, default="", index=True)
    scheduled_station_name = pw.CharField(max_length=16, default="")
    scheduled_procedure_step_start_date = pw.CharField(max_length=8, default="", index=True)
    scheduled_procedure_step_start_time = pw.CharField(max_length=16, default="")
    scheduled_performing_physician_name = pw.CharField(max_length=324, default="")
    scheduled_performing_physician_name_norm = pw.CharField(max_length=324, default="")
    #: scheduled, arrived, in progress, completed, discontinued (OrderStatus values).
    status = pw.CharField(max_length=16, default="scheduled", index=True)
    #: When the desk cancelled the order (its status is then discontinued).
    cancelled_at = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)


class PerformedProcedureStep(BaseModel):
    """A Modality Performed Procedure Step instance (PS3.4 F.7) as N-CREATE and N-SET left it."""

    id = pw.AutoField()

    sop_instance_uid = pw.CharField(max_length=64, unique=True)
    #: IN PROGRESS, COMPLETED or DISCONTINUED (Performed Procedure Step Status).
    performed_procedure_step_status = pw.CharField(max_length=16, index=True)
    performed_procedure_step_id = pw.CharField(max_length=16, default="")
    performed_station_ae_title = pw.CharField(max_length=16, default="")
    modality = pw.CharField(max_length=16, default="")
    patient_id = pw.CharField(max_length=64, default="")
    patient_name = pw.CharField(max_length=324, default="")
    #: From the first item of the Scheduled Step Attributes Sequence.
    study_instance_uid = pw.CharField(max_length=64, default="", index=True)
    accession_number = pw.CharField(max_length=16, default="")
    scheduled_procedure_step_id = pw.CharField(max_length=16, default="")
    performed_procedure_step_start_date = pw.CharField(max_length=8, default="")
    performed_procedure_step_start_time = pw.CharField(max_length=16, default="")
    performed_procedure_step_end_date = pw.CharField(max_length=8, default="")
    performed_procedure_step_end_time = pw.CharField(max_length=16, default="")
    #: Code meaning of the Performed Procedure Step Discontinuation Reason Code Sequence.
    discontinuation_reason = pw.CharField(max_length=64, default="")
    calling_ae_title = pw.CharField(max_length=16, default="")
    #: Every attribute of the instance, DICOM JSON (PS3.18 F.2).
    attributes = pw.TextField(default="{}")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "performed_procedure_step"


class PerformedProcedureStepOrder(BaseModel):
    """Which orders an MPPS performed (one per matched Scheduled Step Attributes item)."""

    id = pw.AutoField()

    step = pw.ForeignKeyField(PerformedProcedureStep, backref="orders", on_delete="CASCADE")
    order = pw.ForeignKeyField(WorklistItem, backref="performed_steps", on_delete="CASCADE")

    class Meta:
        table_name = "performed_procedure_step_order"
        indexes = ((("step", "order"), True),)


class PerformedInstance(BaseModel):
    """One instance an MPPS says it made (Performed Series Sequence, PS3.4 F.7.2.1)."""

    id = pw.AutoField()

    step = pw.ForeignKeyField(PerformedProcedureStep, backref="instances", on_delete="CASCADE")
    series_instance_uid = pw.CharField(max_length=64)
    referenced_sop_class_uid = pw.CharField(max_length=64, default="")
    referenced_sop_instance_uid = pw.CharField(max_length=64)

    class Meta:
        table_name = "performed_instance"


class CommitmentRequestRow(BaseModel):
    """A storage commitment request (PS3.4 J.3), kept from before the N-ACTION response until
    its N-EVENT-REPORT is delivered or given up on, so a node restart loses none."""

    transaction_uid = pw.CharField(max_length=64, index=True)
    calling_ae_title = pw.CharField(max_length=16, index=True)
    #: JSON ``[[Referenced SOP Class UID, Referenced SOP Instance UID], ...]`` as requested.
    items = pw.TextField()
    #: JSON list of the Failure Reason of each item (0: committed), empty until checked.
    results = pw.TextField(default="")
    #: How the report goes: "same-association" (while the requester may wait on its own
    #: association) or "new-association" (to its address in the node registry).
    report_via = pw.CharField(max_length=32, default="same-association")
    #: pending, delivered or failed (CommitmentState values).
    state = pw.CharField(max_length=16, index=True, default="pending")
    attempts = pw.IntegerField(default=0)
    last_error = pw.TextField(default="")
    #: Node process working on it now ("host-pid-token"), empty when nobody is.
    owner = pw.CharField(max_length=128, default="")
    next_attempt_at = pw.DateTimeField(default=utcnow, index=True)
    created_at = pw.DateTimeField(default=utcnow, index=True)
    updated_at = pw.DateTimeField(default=utcnow)
    #: When the requester took the report (delivered) or we gave up (failed).
    finished_at = pw.DateTimeField(null=True)

    class Meta:
        table_name = "commitment_request"


class SchemaVersion(BaseModel):
    version = pw.IntegerField()


ALL_MODELS: list[type[BaseModel]] = [
    Patient,
    Study,
    Series,
    Instance,
    Change,
    RemoteNodeRow,
    NodeEchoRow,
    Job,
    NodeHeartbeat,
    WorklistItem,
    PerformedProcedureStep,
    PerformedProcedureStepOrder,
    PerformedInstance,
    CommitmentRequestRow,
    SchemaVersion,
]
