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
