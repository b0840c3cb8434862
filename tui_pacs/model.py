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
