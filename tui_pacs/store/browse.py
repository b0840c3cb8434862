"""Browse the local index page by page: filtered, sorted study lists, series, instances, changes.

Study lists use keyset paging: a page is fetched after (or before) the sort key of a row, so the
database walks an index from there instead of counting past every earlier row, and deep pages
cost the same as the first. Counting the matches is a separate call the console makes after it
has drawn the page.
"""

from __future__ import annotations

from collections.abc import Sequence

import peewee as pw

from tui_pacs.model import (
    ChangeEvent,
    InstanceSummary,
    SeriesSummary,
    StudyFilter,
    StudyPage,
    StudySort,
    StudySummary,
)
from tui_pacs.store.db import is_sqlite
from tui_pacs.store.models import Change, Instance, Patient, Series, Study

#: Sort columns (besides the study row id that ends every key) for each StudySort.
_SORT_COLUMNS: dict[StudySort, tuple[pw.Field, ...]] = {
    StudySort.STUDY_DATE: (Study.study_date, Study.study_time),
    StudySort.PATIENT_NAME: (Patient.patient_name_norm,),
    StudySort.PATIENT_ID: (Patient.patient_id,),
    StudySort.ACCESSION_NUMBER: (Study.accession_number,),
    StudySort.MODALITIES_IN_STUDY: (Study.modalities_in_study,),
    StudySort.STUDY_DESCRIPTION: (Study.study_description,),
    StudySort.NUMBER_OF_STUDY_RELATED_INSTANCES: (Study.number_of_study_related_instances,),
}

_SUMMARY_FIELDS = (
    Study.id,
    Study.study_instance_uid,
    Patient.patient_id,
    Patient.patient_name,
    Patient.patient_name_norm,
    Patient.patient_birth_date,
    Patient.patient_sex,
    Study.study_date,
    Study.study_time,
    Study.accession_number,
    Study.study_description,
    Study.referring_physician_name,
    Study.modalities_in_study,
    Study.number_of_study_related_series,
    Study.number_of_study_related_instances,
)


def norm_text(value: str) -> str:
    """The case-folded form the index keeps in ``*_norm`` columns (as store.header writes it).

    Not imported from store.header, which loads pydicom: the console draws its first page
    without it.
    """
    return value.casefold()


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "[]" else c for c in text)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _op(column: pw.Field, op: str, pattern: str) -> pw.Expression:
    return pw.Expression(column, op, pattern)


class _Patterns:
    """Case-insensitive prefix and wildcard patterns that an index can serve on both databases."""

    def __init__(self, db: pw.Database) -> None:
        self.sqlite = is_sqlite(db)

    def match(self, column: pw.Field, value: str, *, anywhere: bool = False) -> pw.Expression:
        """``value`` as a prefix of ``column`` (or a ``*``/``?`` pattern over all of it).

        Args:
            column: The column to match (already case-folded, or matched as stored).
            value: What the person typed.
            anywhere: Also match ``value`` at the start of any name component (after ``^`` or
                a space), so "john" finds "SMITH^JOHN".
        """
        wildcard = "*" in value or "?" in value
        if self.sqlite:
            body = "".join(c if c in "*?" else _glob_escape(c) for c in value)
            pattern = body if wildcard else body + "*"
            expr = _op(column, "GLOB", pattern)
            if anywhere and not wildcard:
                expr = (
                    expr | _op(column, "GLOB", "*^" + pattern) | _op(column, "GLOB", "* " + pattern)
                )
            return expr
        body = "".join("%" if c == "*" else "_" if c == "?" else _like_escape(c) for c in value)
        pattern = body if wildcard else body + "%"
        expr = _op(column, "LIKE", pattern)
        if anywhere and not wildcard:
            expr = expr | _op(column, "LIKE", "%^" + pattern) | _op(column, "LIKE", "% " + pattern)
        return expr

    def one_of(self, column: pw.Field, value: str) -> pw.Expression:
        """``value`` is one of the backslash-separated values of ``column`` (ModalitiesInStudy).

        Checked on the study row itself, so a page in date order stops as soon as it is full.
        """
        if self.sqlite:
            # GLOB has no escape character: a backslash is literal, brackets escape the rest.
            v = _glob_escape(value)
            parts = (v + "\\*", "*\\" + v, "*\\" + v + "\\*")
            op = "GLOB"
        else:
            # LIKE's escape character is the backslash: a literal one is written twice.
            v = _like_escape(value)
            parts = (v + "\\\\%", "%\\\\" + v, "%\\\\" + v + "\\\\%")
            op = "LIKE"
        expr: pw.Expression = column == value
        for part in parts:
            expr = expr | _op(column, op, part)
        return expr


def _where(db: pw.Database, flt: StudyFilter, for_count: bool = False) -> list[pw.Expression]:
    patterns = _Patterns(db)
    terms: list[pw.Expression] = []
    if flt.patient_name.strip():
        # Matched over the patient table first: its name index (or a scan of patients, fewer
        # than studies) settles the match before any study is read.
        name = patterns.match(
            Patient.patient_name_norm, norm_text(flt.patient_name.strip()), anywhere=True
        )
        terms.append(Study.patient.in_(Patient.select(Patient.id).where(name)))
    if flt.patient_id.strip():
        terms.append(patterns.match(Patient.patient_id, flt.patient_id.strip()))
    if flt.accession_number.strip():
        terms.append(patterns.match(Study.accession_number, flt.accession_number.strip()))
    if flt.study_date_from:
        terms.append(Study.study_date >= flt.study_date_from)
    if flt.study_date_to:
        terms.append(Study.study_date <= flt.study_date_to)
    if flt.study_date_from or flt.study_date_to:
        terms.append(Study.study_date != "")
    modality = flt.modality.strip().upper()
    if modality:
        # Matched on the study row (not through the series index) so that a page in date order
        # stops as soon as it is full, and the count agrees with the pages by construction.
        terms.append(patterns.one_of(Study.modalities_in_study, modality))
    return terms


def _filtered(
    db: pw.Database, flt: StudyFilter, fields: Sequence[pw.Node], for_count: bool = False
) -> pw.Select:
    query = Study.select(*fields)
    if not for_count or flt.patient_id.strip():
        query = query.join(Patient, on=(Study.patient == Patient.id))
    terms = _where(db, flt, for_count)
    if terms:
        query = query.where(*terms)
    return query


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0


def _summary(row: dict[str, object]) -> StudySummary:
    modalities = str(row["modalities_in_study"] or "")
    return StudySummary(
        study_instance_uid=str(row["study_instance_uid"]),
        patient_id=str(row["patient_id"]),
        patient_name=str(row["patient_name"]),
        patient_birth_date=str(row["patient_birth_date"]),
        patient_sex=str(row["patient_sex"]),
        study_date=str(row["study_date"]),
        study_time=str(row["study_time"]),
        accession_number=str(row["accession_number"]),
        study_description=str(row["study_description"]),
        referring_physician_name=str(row["referring_physician_name"]),
        modalities_in_study=tuple(m for m in modalities.split("\\") if m),
        number_of_study_related_series=_count(row["number_of_study_related_series"]),
        number_of_study_related_instances=_count(row["number_of_study_related_instances"]),
    )


def study_page(
    db: pw.Database,
    flt: StudyFilter,
    *,
    sort: StudySort = StudySort.STUDY_DATE,
    descending: bool = True,
    after: tuple[object, ...] | None = None,
    before: tuple[object, ...] | None = None,
    last: bool = False,
    limit: int = 100,
) -> StudyPage:
    """One page of studies matching ``flt``, in ``sort`` order.

    Args:
        db: The index database.
        flt: The filter.
        sort: The column to sort by (ties broken by arrival order).
        descending: Largest first.
        after: Sort key of the row just before the wanted page (``StudyPage.last_key``).
        before: Sort key of the row just after the wanted page (``StudyPage.first_key``).
        last: Fetch the last page (ignored when ``after`` or ``before`` is given).
        limit: Rows per page.
    """
    columns = (*_SORT_COLUMNS[sort], Study.id)
    key_names = [c.name for c in columns]
    # Walking backwards (the page before, or the last page) reverses the order, then the rows.
    backwards = before is not None or (last and after is None)
    desc = descending != backwards
    query = _filtered(db, flt, _SUMMARY_FIELDS)
    boundary = after if after is not None else before
    if boundary is not None:
        row_value = pw.Tuple(*columns)
        bound = pw.Tuple(*boundary)
        query = query.where(row_value < bound if desc else row_value > bound)
    query = query.order_by(*(c.desc() if desc else c.asc() for c in columns))
    rows = list(query.limit(limit + 1).dicts())
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    keys = [tuple(row[name] for name in key_names) for row in rows]
    if backwards:
        has_previous, has_next = more, before is not None
    else:
        has_previous, has_next = after is not None, more
    return StudyPage(
        studies=tuple(_summary(row) for row in rows),
        first_key=keys[0] if keys else None,
        last_key=keys[-1] if keys else None,
        has_previous=has_previous and bool(rows),
        has_next=has_next and bool(rows),
    )


def count_studies(db: pw.Database, flt: StudyFilter) -> int:
    """How many studies match ``flt``."""
    if flt.is_empty:
        return Study.select().count()
    return _filtered(db, flt, (Study.id,), for_count=True).count()


def study_summary(study_instance_uid: str) -> StudySummary | None:
    """One study by its UID, or None."""
    row = (
        Study.select(*_SUMMARY_FIELDS)
        .join(Patient, on=(Study.patient == Patient.id))
        .where(Study.study_instance_uid == study_instance_uid)
        .dicts()
        .first()
    )
    return _summary(row) if row else None


def series_of(study_instance_uid: str) -> list[SeriesSummary]:
    """Series of a study, by series number then arrival."""
    query = (
        Series.select(Series, Study.study_instance_uid)
        .join(Study)
        .where(Study.study_instance_uid == study_instance_uid)
        .order_by(Series.series_number.asc(nulls="LAST"), Series.id)
    )
    return [
        SeriesSummary(
            series_instance_uid=s.series_instance_uid,
            study_instance_uid=s.study.study_instance_uid,
            modality=s.modality,
            series_number=s.series_number,
            series_description=s.series_description,
            body_part_examined=s.body_part_examined,
            series_date=s.series_date,
            series_time=s.series_time,
            number_of_series_related_instances=s.number_of_series_related_instances,
        )
        for s in query
    ]


def instances_of(series_instance_uid: str, limit: int = 5000) -> list[InstanceSummary]:
    """Instances of a series, by instance number then arrival (at most ``limit``)."""
    query = (
        Instance.select(Instance, Series.series_instance_uid)
        .join(Series)
        .where(Series.series_instance_uid == series_instance_uid)
        .order_by(Instance.instance_number.asc(nulls="LAST"), Instance.id)
        .limit(limit)
    )
    return [
        InstanceSummary(
            sop_instance_uid=i.sop_instance_uid,
            series_instance_uid=i.series.series_instance_uid,
            sop_class_uid=i.sop_class_uid,
            instance_number=i.instance_number,
            rows=i.rows,
            columns=i.columns,
            number_of_frames=i.number_of_frames,
            transfer_syntax_uid=i.transfer_syntax_uid,
            size=i.size,
            received_at=i.received_at,
        )
        for i in query
    ]


def instance_path(sop_instance_uid: str) -> str | None:
    """Path of an instance's file relative to the storage folder, or None if not archived."""
    row = (
        Instance.select(Instance.path).where(Instance.sop_instance_uid == sop_instance_uid).first()
    )
    return row.path if row else None


def last_change_id() -> int:
    """Id of the newest change feed row (0 when the feed is empty)."""
    value = Change.select(pw.fn.MAX(Change.id)).scalar()
    return int(value or 0)


def changes_since(last_id: int, limit: int = 1000) -> list[ChangeEvent]:
    """Change feed rows after ``last_id``, oldest first (at most ``limit``)."""
    query = Change.select().where(Change.id > last_id).order_by(Change.id).limit(limit)
    return [ChangeEvent(id=c.id, kind=c.kind, uid=c.uid, at=c.at) for c in query]
