"""Query a remote node: build a C-FIND identifier from what a person typed, run it, flatten results.

The identifier follows the hierarchical rules of PS3.4 C.4.1.2.1: matching keys only at the
query level, the unique keys of every level above it given as single values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from tui_pacs.config import Config
from tui_pacs.errors import PacsError
from tui_pacs.model import RemoteNode, SeriesSummary, StudyFilter, StudySummary
from tui_pacs.net import qr_scu

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
ROOTS = ("patient", "study")

#: Keys asked for (returned) at each level, in display order.
RETURN_KEYS: dict[str, tuple[str, ...]] = {
    "PATIENT": (
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "NumberOfPatientRelatedStudies",
    ),
    "STUDY": (
        "PatientID",
        "PatientName",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ModalitiesInStudy",
        "StudyDescription",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "StudyInstanceUID",
    ),
    "SERIES": (
        "StudyInstanceUID",
        "SeriesNumber",
        "Modality",
        "SeriesDescription",
        "SeriesDate",
        "NumberOfSeriesRelatedInstances",
        "SeriesInstanceUID",
    ),
    "IMAGE": (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "InstanceNumber",
        "SOPClassUID",
        "SOPInstanceUID",
    ),
}

_DATE_RANGE = re.compile(r"^(\d{8})?(-)?(\d{8})?$")


class QueryError(PacsError):
    """A query that cannot be asked as given (bad level, key or value)."""

    title = "Invalid query"


@dataclass(frozen=True, slots=True)
class FindQuery:
    """What a person asks a remote node for; empty fields are not matched."""

    level: str = "STUDY"
    root: str = "study"
    patient_id: str = ""
    patient_name: str = ""
    accession_number: str = ""
    #: ``YYYYMMDD``, ``YYYYMMDD-YYYYMMDD``, ``YYYYMMDD-`` or ``-YYYYMMDD``.
    study_date: str = ""
    modality: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""


def check_date_range(value: str) -> str:
    """Validate a DA range (PS3.4 C.2.2.2.5) and return it."""
    match = _DATE_RANGE.match(value)
    if (
        not value
        or not match
        or not (match[1] or match[3])
        or (match[1] and match[3] and not match[2])
    ):
        raise QueryError(f"date {value!r}: use YYYYMMDD, YYYYMMDD-YYYYMMDD, YYYYMMDD- or -YYYYMMDD")
    return value


def build_identifier(query: FindQuery) -> Dataset:
    """The C-FIND identifier for ``query``.

    Raises:
        QueryError: The level or root is unknown, a key does not apply at the level, or a unique
            key the level needs is missing.
    """
    level = query.level.upper()
    root = query.root.lower()
    if level not in LEVELS:
        raise QueryError(f"level {query.level!r}; allowed: {', '.join(LEVELS).lower()}")
    if root not in ROOTS:
        raise QueryError(f"root {query.root!r}; allowed: {', '.join(ROOTS)}")
    if level == "PATIENT" and root != "patient":
        raise QueryError("the patient level exists only in the patient root (--root patient)")
    depth = LEVELS.index(level)

    def not_at(option: str, where: str) -> QueryError:
        return QueryError(f"{option} applies to {where} queries, not to the {level.lower()} level")

    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword in RETURN_KEYS[level]:
        setattr(ds, keyword, "")
    # Patient level keys: matching at the patient level (and at the study level of the study
    # root, which folds the patient in); the unique key above the study level of the patient root.
    if query.patient_id:
        if root == "patient" or level in ("PATIENT", "STUDY"):
            ds.PatientID = query.patient_id
        else:
            raise not_at("--patient-id", "patient or study level")
    elif root == "patient" and depth > 0:
        raise QueryError(f"a patient root {level.lower()} query needs --patient-id")
    if query.patient_name:
        if level == "PATIENT" or (level == "STUDY" and root == "study"):
            ds.PatientName = query.patient_name
        else:
            raise not_at("--name", "patient level (or study root, study level)")
    for value, keyword, option in (
        (query.accession_number, "AccessionNumber", "--accession"),
        (query.study_date, "StudyDate", "--date"),
    ):
        if value:
            if level != "STUDY":
                raise not_at(option, "study level")
            setattr(ds, keyword, check_date_range(value) if keyword == "StudyDate" else value)
    if query.modality:
        if level == "STUDY":
            ds.ModalitiesInStudy = query.modality
        elif level == "SERIES":
            ds.Modality = query.modality
        else:
            raise not_at("--modality", "study or series level")
    if query.study_instance_uid:
        if depth >= 1:
            ds.StudyInstanceUID = query.study_instance_uid
        else:
            raise not_at("--study", "study, series or image level")
    elif depth >= 2:
        raise QueryError(f"a {level.lower()} level query needs --study UID")
    if query.series_instance_uid:
        if depth >= 2:
            ds.SeriesInstanceUID = query.series_instance_uid
        else:
            raise not_at("--series", "series or image level")
    elif depth >= 3:
        raise QueryError("an image level query needs --series UID")
    return ds


def flatten(result: Dataset) -> dict[str, str]:
    """A C-FIND result as ``{keyword: text}`` (multiple values joined with a backslash)."""
    row: dict[str, str] = {}
    for elem in result:
        if not elem.keyword or elem.keyword in ("SpecificCharacterSet", "QueryRetrieveLevel"):
            continue
        if elem.VR == "SQ":
            continue
        value = elem.value
        if value is None:
            text = ""
        elif isinstance(value, MultiValue | list | tuple):
            text = "\\".join(str(v) for v in value)
        elif isinstance(value, bytes):
            text = value.decode("latin-1", errors="replace")
        else:
            text = str(value)
        row[elem.keyword] = text
    return row


def find(
    config: Config,
    node: RemoteNode,
    query: FindQuery,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[dict[str, str]]:
    """C-FIND ``query`` on ``node``; yields each match as ``{keyword: text}``."""
    identifier = build_identifier(query)
    root: qr_scu.QueryRoot = "patient" if query.root.lower() == "patient" else "study"
    for result in qr_scu.find(
        config.ae_title, node, identifier, root=root, should_stop=should_stop
    ):
        yield flatten(result)


# --- what the console's remote screen asks -----------------------------------------------------

_WILDCARDS = frozenset("*?")


def _prefix(value: str) -> str:
    """``value`` as a prefix match (``SMITH`` -> ``SMITH*``) unless it already holds wildcards."""
    value = value.strip()
    if not value or _WILDCARDS & set(value):
        return value
    return value + "*"


def study_query(flt: StudyFilter) -> FindQuery:
    """The study-level C-FIND for a filter of the console's filter bar.

    Text fields match as a prefix, as they do in the local archive (``*`` and ``?`` keep their
    C-FIND meaning); the date range becomes a DA range; the modality matches ModalitiesInStudy.
    """
    if flt.study_date_from or flt.study_date_to:
        if flt.study_date_from == flt.study_date_to:
            study_date = flt.study_date_from
        else:
            study_date = f"{flt.study_date_from}-{flt.study_date_to}"
    else:
        study_date = ""
    return FindQuery(
        level="STUDY",
        root="study",
        patient_name=_prefix(flt.patient_name),
        patient_id=_prefix(flt.patient_id),
        accession_number=_prefix(flt.accession_number),
        study_date=study_date,
        modality=flt.modality.strip(),
    )


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _number(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def study_summary(row: dict[str, str]) -> StudySummary:
    """A study-level C-FIND result as the console's study list shows it (0: count not given)."""
    return StudySummary(
        study_instance_uid=row.get("StudyInstanceUID", ""),
        patient_id=row.get("PatientID", ""),
        patient_name=row.get("PatientName", ""),
        patient_birth_date=row.get("PatientBirthDate", ""),
        patient_sex=row.get("PatientSex", ""),
        study_date=row.get("StudyDate", ""),
        study_time=row.get("StudyTime", ""),
        accession_number=row.get("AccessionNumber", ""),
        study_description=row.get("StudyDescription", ""),
        referring_physician_name=row.get("ReferringPhysicianName", ""),
        modalities_in_study=tuple(m for m in row.get("ModalitiesInStudy", "").split("\\") if m),
        number_of_study_related_series=_count(row.get("NumberOfStudyRelatedSeries", "")),
        number_of_study_related_instances=_count(row.get("NumberOfStudyRelatedInstances", "")),
    )


def series_summary(row: dict[str, str], study_instance_uid: str) -> SeriesSummary:
    """A series-level C-FIND result as the console's series list shows it."""
    return SeriesSummary(
        series_instance_uid=row.get("SeriesInstanceUID", ""),
        study_instance_uid=row.get("StudyInstanceUID", "") or study_instance_uid,
        modality=row.get("Modality", ""),
        series_number=_number(row.get("SeriesNumber", "")),
        series_description=row.get("SeriesDescription", ""),
        body_part_examined=row.get("BodyPartExamined", ""),
        series_date=row.get("SeriesDate", ""),
        series_time=row.get("SeriesTime", ""),
        number_of_series_related_instances=_count(
            row.get("NumberOfSeriesRelatedInstances", "")
        ),
    )


def find_studies(
    config: Config,
    node: RemoteNode,
    query: FindQuery,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[StudySummary]:
    """Study-level C-FIND on ``node``; yields each matching study (without a Study UID: skipped)."""
    for row in find(config, node, query, should_stop):
        summary = study_summary(row)
        if summary.study_instance_uid:
            yield summary


def find_series(
    config: Config,
    node: RemoteNode,
    study_instance_uid: str,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[SeriesSummary]:
    """The series of a study on ``node`` (series-level C-FIND), by series number."""
    query = FindQuery(level="SERIES", root="study", study_instance_uid=study_instance_uid)
    series = [
        series_summary(row, study_instance_uid)
        for row in find(config, node, query, should_stop)
        if row.get("SeriesInstanceUID")
    ]
    series.sort(key=lambda s: (s.series_number is None, s.series_number or 0))
    return series
