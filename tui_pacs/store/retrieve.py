"""Resolve a C-MOVE / C-GET identifier to the archived instances it names (PS3.4 C.4.2.2, C.4.3.2).

A retrieve identifier names objects by unique keys only: the key of the Query/Retrieve Level
(Patient ID, Study, Series or SOP Instance UID, the UIDs possibly as a list) and, above it, the
keys of the levels that contain it. Those upper keys are optional here (many SCUs leave them out
of a Study Root SERIES retrieve) but, when present, they must match. Keys below the level and
other attributes are ignored, as C.4.2.2.1 allows the SCP.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee as pw
from pydicom.dataset import Dataset

# InformationModel, ArchivedInstance and RetrieveIdentifierError live below the layers so the
# net retrieve SCP can name them without importing the store; they stay importable from here.
from tui_pacs.errors import InvalidUIDError, RetrieveIdentifierError
from tui_pacs.model import ArchivedInstance, InformationModel
from tui_pacs.store.archive import validate_uid
from tui_pacs.store.db import thread_connection
from tui_pacs.store.models import Instance, Patient, Series, Study

#: Largest UID list put in one ``IN (...)`` (SQLite and PostgreSQL both take far more; this keeps
#: statements small and plans stable).
_CHUNK = 500


class RetrieveLevel(enum.StrEnum):
    """Values of Query/Retrieve Level (0008,0052) a retrieve may use."""

    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


_LEVELS: dict[InformationModel, tuple[RetrieveLevel, ...]] = {
    InformationModel.PATIENT_ROOT: (
        RetrieveLevel.PATIENT,
        RetrieveLevel.STUDY,
        RetrieveLevel.SERIES,
        RetrieveLevel.IMAGE,
    ),
    InformationModel.STUDY_ROOT: (RetrieveLevel.STUDY, RetrieveLevel.SERIES, RetrieveLevel.IMAGE),
}
_UID_KEYS = (
    (RetrieveLevel.STUDY, "StudyInstanceUID"),
    (RetrieveLevel.SERIES, "SeriesInstanceUID"),
    (RetrieveLevel.IMAGE, "SOPInstanceUID"),
)
_ORDER = (RetrieveLevel.PATIENT, RetrieveLevel.STUDY, RetrieveLevel.SERIES, RetrieveLevel.IMAGE)


@dataclass(frozen=True, slots=True)
class RetrieveKeys:
    """The validated unique keys of a retrieve identifier (None: not given)."""

    level: RetrieveLevel
    patient_id: str | None = None
    issuer_of_patient_id: str | None = None
    study_instance_uids: tuple[str, ...] | None = None
    series_instance_uids: tuple[str, ...] | None = None
    sop_instance_uids: tuple[str, ...] | None = None


def _values(identifier: Dataset, keyword: str) -> list[str] | None:
    """The element's values as text, or None when absent or empty (universal matching)."""
    try:
        value: Any = identifier.get(keyword)
    except Exception as exc:  # a value pydicom cannot decode
        raise RetrieveIdentifierError(f"{keyword} cannot be read: {exc}") from exc
    if value is None:
        return None
    items = [value] if isinstance(value, str | bytes) else list(value)
    texts = []
    for item in items:
        text = item.decode("ascii", "replace") if isinstance(item, bytes) else str(item)
        text = text.rstrip("\0 ").strip()
        if text:
            texts.append(text)
    return texts or None


def _uids(identifier: Dataset, keyword: str) -> tuple[str, ...] | None:
    values = _values(identifier, keyword)
    if values is None:
        return None
    cleaned: dict[str, None] = {}
    for value in values:
        if "*" in value or "?" in value:
            raise RetrieveIdentifierError(
                f"{keyword}: wildcards are not allowed in a retrieve identifier ({value!r})"
            )
        try:
            cleaned[validate_uid(value, keyword)] = None
        except InvalidUIDError as exc:
            raise RetrieveIdentifierError(str(exc)) from None
    return tuple(cleaned)


def _single(identifier: Dataset, keyword: str) -> str | None:
    values = _values(identifier, keyword)
    if values is None:
        return None
    if len(values) > 1:
        raise RetrieveIdentifierError(f"{keyword}: a retrieve needs a single value, got a list")
    value = values[0]
    if "*" in value or "?" in value:
        raise RetrieveIdentifierError(
            f"{keyword}: wildcards are not allowed in a retrieve identifier ({value!r})"
        )
    return value


def parse_identifier(identifier: Dataset, model: InformationModel) -> RetrieveKeys:
    """Validate a retrieve identifier against ``model``.

    Raises:
        RetrieveIdentifierError: No or an unknown Query/Retrieve Level, a level the model does
            not have, the level's unique key missing, a wildcard, or an invalid UID.
    """
    raw_level = _values(identifier, "QueryRetrieveLevel")
    if raw_level is None:
        raise RetrieveIdentifierError("QueryRetrieveLevel (0008,0052) is missing")
    try:
        level = RetrieveLevel(raw_level[0].upper())
    except ValueError:
        allowed = ", ".join(lv.value for lv in _LEVELS[model])
        raise RetrieveIdentifierError(
            f"QueryRetrieveLevel {raw_level[0]!r} is not a level; allowed: {allowed}"
        ) from None
    if level not in _LEVELS[model]:
        raise RetrieveIdentifierError(
            f"QueryRetrieveLevel {level.value} does not exist in the Study Root model"
        )
    depth = _ORDER.index(level)
    patient_id = _single(identifier, "PatientID")
    issuer = _single(identifier, "IssuerOfPatientID")
    uids: dict[RetrieveLevel, tuple[str, ...] | None] = {}
    for key_level, keyword in _UID_KEYS:
        if _ORDER.index(key_level) <= depth:
            uids[key_level] = _uids(identifier, keyword)
    if level is RetrieveLevel.PATIENT and patient_id is None:
        raise RetrieveIdentifierError("a PATIENT level retrieve needs a PatientID")
    for key_level, keyword in _UID_KEYS:
        if key_level is level and uids.get(key_level) is None:
            raise RetrieveIdentifierError(
                f"a {level.value} level retrieve needs {keyword} (one UID or a list)"
            )
    return RetrieveKeys(
        level=level,
        patient_id=patient_id,
        issuer_of_patient_id=issuer,
        study_instance_uids=uids.get(RetrieveLevel.STUDY),
        series_instance_uids=uids.get(RetrieveLevel.SERIES),
        sop_instance_uids=uids.get(RetrieveLevel.IMAGE),
    )


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _query(keys: RetrieveKeys, level_values: Sequence[str] | None) -> pw.ModelSelect[Instance]:
    query = (
        Instance.select(
            Instance.sop_class_uid,
            Instance.sop_instance_uid,
            Instance.transfer_syntax_uid,
            Instance.path,
        )
        .join(Series)
        .join(Study)
        .join(Patient)
    )
    columns: dict[RetrieveLevel, tuple[pw.Field, Sequence[str] | None]] = {
        RetrieveLevel.STUDY: (Study.study_instance_uid, keys.study_instance_uids),
        RetrieveLevel.SERIES: (Series.series_instance_uid, keys.series_instance_uids),
        RetrieveLevel.IMAGE: (Instance.sop_instance_uid, keys.sop_instance_uids),
    }
    if keys.patient_id is not None:
        query = query.where(Patient.patient_id == keys.patient_id)
    if keys.issuer_of_patient_id is not None:
        query = query.where(Patient.issuer_of_patient_id == keys.issuer_of_patient_id)
    for level, (column, values) in columns.items():
        if level is keys.level:
            values = level_values
        if values is None:
            continue
        query = query.where(column == values[0]) if len(values) == 1 else query.where(
            column.in_(list(values))
        )
    return query.order_by(
        Study.id, Series.series_number, Series.id, Instance.instance_number, Instance.id
    )


def find_instances(keys: RetrieveKeys, storage_path: Path) -> list[ArchivedInstance]:
    """The archived instances ``keys`` name, study by study, series by series, in order.

    Runs on the calling thread's database connection (see :func:`retrieve_instances`).
    """
    level_values: Iterable[Sequence[str] | None]
    own = {
        RetrieveLevel.STUDY: keys.study_instance_uids,
        RetrieveLevel.SERIES: keys.series_instance_uids,
        RetrieveLevel.IMAGE: keys.sop_instance_uids,
    }.get(keys.level)
    level_values = [None] if own is None else _chunks(own)
    root = Path(storage_path)
    found: list[ArchivedInstance] = []
    for values in level_values:
        for row in _query(keys, values).tuples().iterator():
            sop_class, sop_instance, transfer_syntax, rel = row
            found.append(ArchivedInstance(sop_class, sop_instance, transfer_syntax, root / rel))
    return found


def retrieve_instances(
    identifier: Dataset, model: InformationModel, storage_path: Path, db: pw.Database
) -> list[ArchivedInstance]:
    """Validate ``identifier`` and list what it names, on a connection of this thread's own.

    This is the ``locate`` callable the C-MOVE and C-GET handlers are given.

    Raises:
        RetrieveIdentifierError: The identifier is not valid for ``model``.
        peewee.PeeweeException: The database failed.
    """
    keys = parse_identifier(identifier, model)
    with thread_connection(db):
        return find_instances(keys, storage_path)
