"""Frozen dataclasses the layers pass to each other (never Peewee rows)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


class DuplicatePolicy(enum.StrEnum):
    """What to do when a SOP Instance UID that is already archived arrives again."""

    KEEP_FIRST = "keep-first"
    """Keep the archived instance, drop the new copy and report success (the Orthanc default)."""
    OVERWRITE = "overwrite"
    """Replace the archived file and its index row with the new copy."""
    REJECT = "reject"
    """Refuse the new copy with a failure status (0x0111 over C-STORE, a rejection on import)."""


class DimseService(enum.StrEnum):
    """DIMSE services a remote AE may be allowed to use against the node."""

    ECHO = "echo"
    FIND = "find"
    MOVE = "move"
    GET = "get"
    STORE = "store"
    MWL = "mwl"
    """Modality Worklist C-FIND (PS3.4 K)."""
    MPPS = "mpps"
    """Modality Performed Procedure Step N-CREATE / N-SET (PS3.4 F.7)."""
    COMMIT = "commit"
    """Storage Commitment Push Model N-ACTION (PS3.4 J.3)."""


ALL_SERVICES = frozenset(DimseService)


class NodeSource(enum.StrEnum):
    """Where a node of the registry is defined."""

    CONFIG = "config"
    """The config file's ``[[nodes]]``: read-only in the registry (edit the file)."""
    DATABASE = "db"
    """The ``remote_node`` table: ``tui-pacs nodes`` and the console add, edit and remove it."""


@dataclass(frozen=True, slots=True)
class RemoteNode:
    """A remote DICOM application entity the node talks to or accepts calls from."""

    name: str
    ae_title: str
    host: str
    port: int
    description: str = ""
    #: Services this AE may use against us when it calls in.
    allowed_services: frozenset[DimseService] = ALL_SERVICES
    #: How we retrieve from this node: "move" (C-MOVE to our own AE) or "get" (C-GET).
    retrieve_method: str = "move"
    #: Where the registry found it.
    source: NodeSource = NodeSource.CONFIG
    #: The last C-ECHO we sent it, as the registry recorded it (None: never echoed).
    last_echo: EchoResult | None = None


class StoreDisposition(enum.StrEnum):
    """What the store did with one instance."""

    STORED = "stored"
    DUPLICATE_KEPT = "duplicate-kept"
    OVERWRITTEN = "overwritten"
    DUPLICATE_REJECTED = "duplicate-rejected"


@dataclass(frozen=True, slots=True)
class StoreResult:
    """Outcome of storing one SOP instance."""

    disposition: StoreDisposition
    sop_instance_uid: str
    study_instance_uid: str
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """Every attribute of one instance that the index keeps, decoded to Python text.

    Field names are the DICOM keywords in snake_case. Dates are ``YYYYMMDD`` and times
    ``HHMMSS.FFFFFF`` strings as in the data set, so range matching works on text.
    """

    # Patient level
    patient_id: str
    patient_name: str
    issuer_of_patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    # Study level
    study_instance_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    accession_number: str = ""
    study_id: str = ""
    study_description: str = ""
    referring_physician_name: str = ""
    patient_age: str = ""
    institution_name: str = ""
    # Series level
    series_instance_uid: str = ""
    modality: str = ""
    series_number: int | None = None
    series_description: str = ""
    body_part_examined: str = ""
    series_date: str = ""
    series_time: str = ""
    performed_procedure_step_start_date: str = ""
    performed_procedure_step_start_time: str = ""
    protocol_name: str = ""
    station_name: str = ""
    # Instance level
    sop_instance_uid: str = ""
    sop_class_uid: str = ""
    instance_number: int | None = None
    content_date: str = ""
    content_time: str = ""
    rows: int | None = None
    columns: int | None = None
    number_of_frames: int | None = None
    specific_character_set: str = ""


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """A file an import could not take, and why."""

    path: str
    reason: str


@dataclass(slots=True)
class ImportSummary:
    """Running totals of an import (mutable while the import runs)."""

    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return self.imported + self.duplicates + self.rejected


@dataclass(frozen=True, slots=True)
class EchoResult:
    """Result of a C-ECHO against a node."""

    node: str
    ok: bool
    latency_ms: float | None
    status: int | None
    message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class SendProgress:
    """Progress of a C-STORE SCU run, yielded after every instance."""

    total: int
    completed: int
    failed: int
    warning: int
    last_sop_instance_uid: str = ""
    last_status: int | None = None
    last_error: str = ""


class JobState(enum.StrEnum):
    """Life cycle of a queued job (``Job.state``)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True once the job has ended, whatever the outcome."""
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


class JobKind(enum.StrEnum):
    """The kinds of work the node's job runner executes."""

    RETRIEVE = "retrieve"
    """C-MOVE (to our own AE) or C-GET of a study or series from a remote node."""
    SEND = "send"
    """C-STORE of archived instances (by study/series) or of files to a remote node."""


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A snapshot of one job, as the CLI and the console show it."""

    id: int
    kind: str
    state: JobState
    node_name: str
    description: str
    params: dict[str, object]
    total: int | None
    completed: int
    failed: int
    warning: int
    remaining: int | None
    last_status: int | None
    error: str
    failed_uids: tuple[str, ...]
    cancel_requested: bool
    attempts: int
    owner: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RetrieveProgress:
    """Progress of a C-MOVE or C-GET, yielded after every response (PS3.4 C.4.2.1.6, C.4.3.1.6).

    Counts are the sub-operation counts the peer reports; ``None`` when it did not send them.
    """

    status: int
    remaining: int | None
    completed: int
    failed: int
    warning: int
    #: Failed SOP Instance UID List (0008,0058) of the final response, if any.
    failed_uids: tuple[str, ...] = ()
    #: True on the final response (success, warning, failure or cancel).
    done: bool = False

    @property
    def total(self) -> int | None:
        """Sub-operations in all, when the peer told us how many remain."""
        if self.remaining is None:
            return None
        return self.remaining + self.completed + self.failed + self.warning


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A running node process as its heartbeat row describes it."""

    node_id: str
    ae_title: str
    host: str
    pid: int
    port: int
    started_at: datetime
    seen_at: datetime
    associations: int
    last_instance_at: datetime | None
    jobs_running: int


@dataclass(frozen=True, slots=True)
class StudySummary:
    """One archived study as a local search lists it (the console's study table)."""

    study_instance_uid: str
    patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    study_date: str
    study_time: str
    accession_number: str
    study_description: str
    referring_physician_name: str
    #: ModalitiesInStudy, e.g. ("CT", "SR").
    modalities_in_study: tuple[str, ...]
    number_of_study_related_series: int
    number_of_study_related_instances: int


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    """One archived series of a study (the console's series table)."""

    series_instance_uid: str
    study_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    body_part_examined: str
    series_date: str
    series_time: str
    number_of_series_related_instances: int


@dataclass(frozen=True, slots=True)
class InstanceSummary:
    """One archived SOP instance of a series (the console's instance panel)."""

    sop_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    instance_number: int | None
    rows: int | None
    columns: int | None
    number_of_frames: int | None
    transfer_syntax_uid: str
    size: int
    received_at: datetime


class StudySort(enum.StrEnum):
    """Columns the local study list can be sorted by."""

    STUDY_DATE = "study_date"
    PATIENT_NAME = "patient_name"
    PATIENT_ID = "patient_id"
    ACCESSION_NUMBER = "accession_number"
    MODALITIES_IN_STUDY = "modalities_in_study"
    STUDY_DESCRIPTION = "study_description"
    NUMBER_OF_STUDY_RELATED_INSTANCES = "number_of_study_related_instances"


@dataclass(frozen=True, slots=True)
class StudyFilter:
    """What the local study list is narrowed to; empty fields match everything.

    Text fields match case-insensitively as a prefix of the value (of any component of a person
    name), or as a pattern when they hold ``*`` or ``?`` wildcards. Dates are ``YYYYMMDD``;
    either end of the range may be empty (open).
    """

    patient_name: str = ""
    patient_id: str = ""
    accession_number: str = ""
    study_date_from: str = ""
    study_date_to: str = ""
    modality: str = ""

    @property
    def is_empty(self) -> bool:
        """True when the filter matches every study."""
        return not any(
            (
                self.patient_name,
                self.patient_id,
                self.accession_number,
                self.study_date_from,
                self.study_date_to,
                self.modality,
            )
        )


@dataclass(frozen=True, slots=True)
class StudyPage:
    """One page of the local study list, with opaque keys to fetch the neighbouring pages.

    ``first_key`` / ``last_key`` are the sort keys of the first and last study on the page
    (keyset paging): hand them back to ask for the page before or after.
    """

    studies: tuple[StudySummary, ...]
    first_key: tuple[object, ...] | None
    last_key: tuple[object, ...] | None
    has_previous: bool
    has_next: bool


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One row of the change feed (kind such as ``study.created``, ``instance.stored``, ``job``)."""

    id: int
    kind: str
    uid: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TagNode:
    """One element of a data set as the tag tree shows it; sequence items are its children.

    Attributes:
        tag: The element tag as an integer (0 for a sequence item).
        keyword: The DICOM keyword ("" for private or unknown elements, "Item 3" for an item).
        name: The dictionary name of the element.
        vr: Its value representation.
        value: The value as short, printable text.
        children: Items of a sequence, or elements of an item.
    """

    tag: int
    keyword: str
    name: str
    vr: str
    value: str
    children: tuple[TagNode, ...] = ()

    @property
    def tag_text(self) -> str:
        """The tag as ``(gggg,eeee)``, empty for a sequence item."""
        if not self.keyword.startswith("Item ") or self.tag:
            return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"
        return ""


class InformationModel(enum.StrEnum):
    """The Query/Retrieve information model a request was sent under (PS3.4 C.6)."""

    PATIENT_ROOT = "patient-root"
    STUDY_ROOT = "study-root"


@dataclass(frozen=True, slots=True)
class ArchivedInstance:
    """One instance to send: what the C-STORE sub-operation needs, and where the file is."""

    sop_class_uid: str
    sop_instance_uid: str
    #: The transfer syntax the file is archived in (sent as is when the peer accepts it).
    transfer_syntax_uid: str
    path: Path


class OrderStatus(enum.StrEnum):
    """Where an order (a Scheduled Procedure Step) stands on the tech desk."""

    SCHEDULED = "scheduled"
    ARRIVED = "arrived"
    """The patient is here."""
    IN_PROGRESS = "in progress"
    """An MPPS is in progress, or images are arriving."""
    COMPLETED = "completed"
    DISCONTINUED = "discontinued"
    """Stopped: discontinued by the modality (MPPS) or cancelled at the desk."""

    @property
    def active(self) -> bool:
        """True while the step is still to be performed or being performed (MWL lists it)."""
        return self in (OrderStatus.SCHEDULED, OrderStatus.ARRIVED, OrderStatus.IN_PROGRESS)


@dataclass(frozen=True, slots=True)
class OrderFields:
    """What a person types for an order (the console form, the CLI, one CSV row).

    Field names are DICOM keywords in snake_case. Empty text means "not given": the Study
    Instance UID and the Scheduled Procedure Step ID are then assigned.
    """

    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    accession_number: str = ""
    requested_procedure_id: str = ""
    requested_procedure_description: str = ""
    requested_procedure_code_value: str = ""
    requested_procedure_coding_scheme_designator: str = ""
    requested_procedure_code_meaning: str = ""
    scheduled_procedure_step_id: str = ""
    scheduled_procedure_step_description: str = ""
    modality: str = ""
    scheduled_station_ae_title: str = ""
    scheduled_station_name: str = ""
    scheduled_procedure_step_start_date: str = ""
    scheduled_procedure_step_start_time: str = ""
    scheduled_performing_physician_name: str = ""
    study_instance_uid: str = ""


@dataclass(frozen=True, slots=True)
class WorklistOrder:
    """One order of the worklist (a Scheduled Procedure Step), as stored."""

    id: int
    patient_name: str
    patient_id: str
    patient_birth_date: str
    patient_sex: str
    accession_number: str
    requested_procedure_id: str
    requested_procedure_description: str
    requested_procedure_code_value: str
    requested_procedure_coding_scheme_designator: str
    requested_procedure_code_meaning: str
    study_instance_uid: str
    scheduled_procedure_step_id: str
    scheduled_procedure_step_description: str
    modality: str
    scheduled_station_ae_title: str
    scheduled_station_name: str
    scheduled_procedure_step_start_date: str
    scheduled_procedure_step_start_time: str
    scheduled_performing_physician_name: str
    status: OrderStatus
    cancelled: bool
    created_at: datetime
    updated_at: datetime

    def fields(self) -> OrderFields:
        """The editable fields of this order (to pre-fill a form)."""
        return OrderFields(
            **{name: getattr(self, name) for name in OrderFields.__dataclass_fields__}
        )


@dataclass(frozen=True, slots=True)
class WorklistFilter:
    """Which orders a list shows; empty fields match everything.

    Dates are ``YYYYMMDD`` (either end may be empty: open). ``modality`` and ``station`` (the
    scheduled station AE title) match exactly; ``statuses`` empty means every status.
    """

    date_from: str = ""
    date_to: str = ""
    modality: str = ""
    station: str = ""
    statuses: frozenset[OrderStatus] = frozenset()
    patient: str = ""
    """Patient name (without regard to case, ``*``/``?`` wildcards) or exact patient ID."""


class OrderFlag(enum.StrEnum):
    """Things about an order a tech must not miss."""

    PATIENT_ID_MISMATCH = "patient-id-mismatch"
    """Images matched to the order carry another Patient ID."""
    PATIENT_NAME_MISMATCH = "patient-name-mismatch"
    """Images matched to the order carry another Patient Name (compared without case)."""
    MPPS_COUNT_MISMATCH = "mpps-count-mismatch"
    """A finished MPPS reports a different number of instances than were received."""
    COMPLETED_WITHOUT_IMAGES = "completed-without-images"
    """An MPPS completed the order but no image of it was received."""


@dataclass(frozen=True, slots=True)
class OrderProgress:
    """One order on the tech desk: its images so far, its MPPS, its flags.

    Attributes:
        order: The order.
        study_instance_uids: Archived studies matched to it (by Study Instance UID, else by
            Accession Number).
        matched_by: "study-instance-uid", "accession-number" or "" (no images yet).
        series_received: Series of those studies in the archive.
        instances_received: Instances of those studies in the archive.
        received_patient_ids: Patient IDs the matched studies carry.
        received_patient_names: Patient names the matched studies carry.
        mpps_status: The latest MPPS status of the order (IN PROGRESS, COMPLETED,
            DISCONTINUED), "" when no MPPS was received.
        mpps_instances: Instances the order's MPPS reported (distinct SOP Instance UIDs).
        flags: What is wrong with it.
        last_received_at: When the last instance of its studies arrived (naive UTC).
    """

    order: WorklistOrder
    study_instance_uids: tuple[str, ...]
    matched_by: str
    series_received: int
    instances_received: int
    received_patient_ids: tuple[str, ...]
    received_patient_names: tuple[str, ...]
    mpps_status: str
    mpps_instances: int
    flags: tuple[OrderFlag, ...]
    last_received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UnmatchedStudy:
    """An archived study that matches no order (by Study Instance UID or Accession Number)."""

    study_instance_uid: str
    patient_id: str
    patient_name: str
    accession_number: str
    study_date: str
    study_description: str
    modalities_in_study: tuple[str, ...]
    number_of_study_related_series: int
    number_of_study_related_instances: int


@dataclass(frozen=True, slots=True)
class WorklistBoard:
    """What the worklist pane shows: the filtered orders with their progress, and the studies
    of the same days that match no order."""

    orders: tuple[OrderProgress, ...]
    unmatched_studies: tuple[UnmatchedStudy, ...]

    @property
    def flagged(self) -> int:
        """Orders with at least one flag, plus unmatched studies."""
        return sum(1 for o in self.orders if o.flags) + len(self.unmatched_studies)


@dataclass(frozen=True, slots=True)
class CsvRowError:
    """A CSV row the import could not take: its line number (1 is the header) and why."""

    line: int
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CsvImportReport:
    """Outcome of ``tui-pacs worklist import``: the orders created and the rows refused."""

    imported: tuple[WorklistOrder, ...]
    errors: tuple[CsvRowError, ...]


@dataclass(frozen=True, slots=True)
class PerformedStepInfo:
    """One MPPS instance as the desk shows it."""

    sop_instance_uid: str
    status: str
    performed_station_ae_title: str
    modality: str
    start_date: str
    start_time: str
    end_date: str
    end_time: str
    discontinuation_reason: str
    instances: int
    order_ids: tuple[int, ...]
    calling_ae_title: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CommitmentItem:
    """One instance of a storage commitment request, and whether we commit to it."""

    sop_class_uid: str
    sop_instance_uid: str
    #: 0 when committed; else the Failure Reason (0008,1197): 0x0112 no such object,
    #: 0x0119 class/instance conflict, 0x0110 processing failure.
    failure_reason: int = 0


class CommitmentState(enum.StrEnum):
    """Life cycle of a storage commitment request's report (``commitment_request.state``)."""

    PENDING = "pending"
    """Accepted; its N-EVENT-REPORT is not delivered yet (being sent, or waiting to retry)."""
    DELIVERED = "delivered"
    """The requester took the N-EVENT-REPORT."""
    FAILED = "failed"
    """Given up after the last attempt; ``last_error`` says why."""


@dataclass(frozen=True, slots=True)
class CommitmentReport:
    """A storage commitment request and where its report stands (``tui-pacs commitment``)."""

    id: int
    transaction_uid: str
    calling_ae_title: str
    items: tuple[CommitmentItem, ...]
    #: False until the instances were checked (then ``items`` carry their failure reasons).
    checked: bool
    report_via: str
    state: CommitmentState
    attempts: int
    last_error: str
    owner: str
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @property
    def committed(self) -> int:
        """Instances we commit to (0 until checked)."""
        return sum(1 for i in self.items if not i.failure_reason) if self.checked else 0

    @property
    def failed(self) -> int:
        """Instances listed as failed (0 until checked)."""
        return sum(1 for i in self.items if i.failure_reason) if self.checked else 0
