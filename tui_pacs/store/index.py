"""Write instances into the index, one transaction per batch (group commit).

Every C-STORE handler and import thread hands its durable temporary file to one
:class:`IndexWriter`. The writer takes whatever is waiting (up to ``max_batch``), links the files
into place, fsyncs their folders, writes all rows in one transaction and commits; only then does
each caller get its result and send its success status. One commit and one folder sync serve many
instances, and SQLite never sees two writers of ours at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import peewee as pw

from tui_pacs.errors import DuplicateInstanceError, StoreError
from tui_pacs.model import DuplicatePolicy, InstanceRecord, StoreDisposition, StoreResult
from tui_pacs.store.archive import Archive, TempFile, relative_path
from tui_pacs.store.db import is_sqlite
from tui_pacs.store.header import norm_text
from tui_pacs.store.models import Change, Instance, Patient, Series, Study, utcnow

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PendingInstance:
    """A received instance whose file is durable in the incoming folder."""

    record: InstanceRecord
    temp: TempFile
    transfer_syntax_uid: str
    calling_ae_title: str = ""
    received_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class _Outcome:
    result: StoreResult | None = None
    error: BaseException | None = None


@dataclass(slots=True)
class _Work:
    pending: PendingInstance
    done: threading.Event = field(default_factory=threading.Event)
    outcome: _Outcome = field(default_factory=_Outcome)


def _add_value(joined: str, value: str) -> str:
    if not value:
        return joined
    values = set(joined.split("\\")) if joined else set()
    if value in values:
        return joined
    values.add(value)
    return "\\".join(sorted(values))


class _Batch:
    """File moves of one transaction, undone if the transaction fails."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.dirs: set[Path] = set()
        self.linked: list[str] = []
        self.remove_after_commit: list[str] = []

    def place(self, temp: TempFile, rel: str) -> str:
        rel = self.archive.link_into_place(temp, rel, self.dirs)
        self.linked.append(rel)
        return rel

    def undo(self) -> None:
        for rel in self.linked:
            self.archive.remove(rel)


@dataclass(frozen=True, slots=True)
class _Parents:
    """Row ids of an instance's series, study and patient, and the study's summaries."""

    series_id: int
    study_id: int
    patient_id: int
    modalities_in_study: str
    sop_classes_in_study: str


def _q(name: str) -> str:
    return f'"{name}"'


class _Statements:
    """The few statements of the ingest hot path, as SQL text built once per shape.

    Values go through each field's ``db_value`` so rows are identical to what peewee writes.
    Every model here has peewee's implicit ``id`` primary key.
    """

    def __init__(self, db: pw.Database) -> None:
        self.db = db
        self._cache: dict[tuple[object, ...], str] = {}

    def _execute(self, sql: str, params: list[object]) -> Any:
        return self.db.execute_sql(sql, params)

    def exists(self, model: type[pw.Model], field: str, value: object) -> bool:
        key = ("exists", model, field)
        sql = self._cache.get(key)
        if sql is None:
            meta = model._meta
            column = meta.fields[field].column_name
            sql = f"SELECT 1 FROM {_q(meta.table_name)} WHERE {_q(column)} = {self.db.param}"
            self._cache[key] = sql
        return self._execute(sql, [value]).fetchone() is not None

    def parents(self, series_instance_uid: str) -> _Parents | None:
        sql = self._cache.get(("parents",))
        if sql is None:
            se, st = Series._meta, Study._meta
            sql = (
                f"SELECT se.id, st.id, st.{_q(Study.patient.column_name)}, "
                f"st.{_q(Study.modalities_in_study.column_name)}, "
                f"st.{_q(Study.sop_classes_in_study.column_name)} "
                f"FROM {_q(se.table_name)} se JOIN {_q(st.table_name)} st "
                f"ON st.id = se.{_q(Series.study.column_name)} "
                f"WHERE se.{_q(Series.series_instance_uid.column_name)} = {self.db.param}"
            )
            if not is_sqlite(self.db):
                # Lock the study row before reading its summaries: two node processes adding
                # to one study must not both compute ModalitiesInStudy from the same old value.
                # (SQLite writers are serialised by the IMMEDIATE transaction already.)
                sql += " FOR NO KEY UPDATE OF st"
            self._cache[("parents",)] = sql
        row = self._execute(sql, [series_instance_uid]).fetchone()
        return _Parents(*row) if row is not None else None

    def insert(self, model: type[pw.Model], **values: object) -> None:
        meta = model._meta
        key = ("insert", model, *values)
        sql = self._cache.get(key)
        if sql is None:
            columns = ", ".join(_q(meta.fields[name].column_name) for name in values)
            marks = ", ".join([self.db.param] * len(values))
            sql = f"INSERT INTO {_q(meta.table_name)} ({columns}) VALUES ({marks})"
            self._cache[key] = sql
        self._execute(sql, [meta.fields[k].db_value(v) for k, v in values.items()])

    def count_up(
        self, model: type[pw.Model], row_id: int, now: datetime, **changes: object
    ) -> None:
        """Add the integer ``changes`` to their columns, set the text ones, touch updated_at."""
        meta = model._meta
        key = ("update", model, *((k, isinstance(v, int)) for k, v in changes.items()))
        sql = self._cache.get(key)
        if sql is None:
            parts = []
            for name, value in changes.items():
                col = _q(meta.fields[name].column_name)
                parts.append(
                    f"{col} = {col} + {self.db.param}"
                    if isinstance(value, int)
                    else f"{col} = {self.db.param}"
                )
            parts.append(f"{_q(meta.fields['updated_at'].column_name)} = {self.db.param}")
            sql = (
                f"UPDATE {_q(meta.table_name)} SET {', '.join(parts)} "
                f"WHERE id = {self.db.param}"
            )
            self._cache[key] = sql
        params = [meta.fields[k].db_value(v) for k, v in changes.items()]
        params += [meta.fields["updated_at"].db_value(now), row_id]
        self._execute(sql, params)


class Index:
    """Index writes for the store (used by the writer thread and by maintenance code)."""

    def __init__(self, db: pw.Database, archive: Archive, policy: DuplicatePolicy) -> None:
        self.db = db
        self.archive = archive
        self.policy = policy
        self._sql = _Statements(db)

    def transaction(self) -> pw._atomic:
        # IMMEDIATE takes SQLite's write lock at BEGIN, so two processes never deadlock upgrading
        # a read transaction; PostgreSQL needs no hint.
        if is_sqlite(self.db):
            return self.db.atomic("IMMEDIATE")
        return self.db.atomic()

    def store_batch(self, items: list[PendingInstance]) -> list[StoreResult | BaseException]:
        """Index ``items`` in one transaction; on failure retry them one by one.

        Returns one result (or the exception for that item) per item, in order.
        """
        if not items:
            return []
        try:
            return self._store_all(items)
        except Exception as exc:  # one bad item must not fail its neighbours
            if len(items) == 1:
                return [self._as_store_error(exc)]
            log.warning("batch of %d failed (%s); retrying one by one", len(items), exc)
        results: list[StoreResult | BaseException] = []
        for item in items:
            try:
                results.extend(self._store_all([item]))
            except Exception as exc:
                results.append(self._as_store_error(exc))
        return results

    @staticmethod
    def _as_store_error(exc: BaseException) -> BaseException:
        if isinstance(exc, StoreError):
            return exc
        return StoreError(f"index write failed: {exc}", "Out of resources")

    def _store_all(self, items: list[PendingInstance]) -> list[StoreResult | BaseException]:
        batch = _Batch(self.archive)
        results: list[StoreResult | BaseException] = []
        attempts = 0
        while True:
            attempts += 1
            try:
                with self.transaction():
                    results = [self._store_one(item, batch) for item in items]
                    self.archive.sync_dirs(batch.dirs)
                break
            except pw.IntegrityError:
                # Another process created the same patient/study/series between our read and
                # our insert (PostgreSQL); the rows exist now, so a second pass finds them.
                batch.undo()
                batch = _Batch(self.archive)
                if attempts >= 3:
                    raise
            except BaseException:
                batch.undo()
                raise
        for rel in batch.remove_after_commit:
            self.archive.remove(rel)
        for item in items:
            self.archive.discard(item.temp.path)
        return results

    def _store_one(self, item: PendingInstance, batch: _Batch) -> StoreResult | BaseException:
        # The common case (a new instance in a known series) runs prepared-style SQL: building
        # each statement with peewee cost more CPU than SQLite spent executing it.
        rec = item.record
        existing = None
        if self._sql.exists(Instance, "sop_instance_uid", rec.sop_instance_uid):
            existing = Instance.get_or_none(Instance.sop_instance_uid == rec.sop_instance_uid)
        disposition = StoreDisposition.STORED
        rel = relative_path(rec.study_instance_uid, rec.series_instance_uid, rec.sop_instance_uid)
        if existing is not None:
            if self.policy is DuplicatePolicy.KEEP_FIRST or existing.checksum == item.temp.checksum:
                # An identical copy (a resend, a second import) changes nothing whatever the policy.
                return StoreResult(
                    StoreDisposition.DUPLICATE_KEPT,
                    rec.sop_instance_uid,
                    rec.study_instance_uid,
                    self.archive.abspath(existing.path),
                )
            if self.policy is DuplicatePolicy.REJECT:
                return DuplicateInstanceError(
                    f"SOP Instance UID {rec.sop_instance_uid} is already archived "
                    "(duplicate policy: reject)"
                )
            # Overwrite: the new copy gets a fresh name, the old file goes after the commit,
            # so a failure at any point leaves one complete version indexed.
            disposition = StoreDisposition.OVERWRITTEN
            rel = rel.removesuffix(".dcm") + f".{uuid.uuid4().hex[:8]}.dcm"
            self._delete_instance(existing)
            batch.remove_after_commit.append(existing.path)
        rel = batch.place(item.temp, rel)
        parents = self._sql.parents(rec.series_instance_uid)
        if parents is None:
            series, new_series, study, new_study, patient, new_patient = self._parents(rec)
            if not is_sqlite(self.db) and not new_study:
                # Re-read under a row lock (see parents()): another process may be adding to
                # this study at the same moment.
                study = (
                    Study.select(Study.id, Study.modalities_in_study, Study.sop_classes_in_study)
                    .where(Study.id == study.get_id())
                    # peewee takes the lock clause as a string; its stubs only say bool.
                    .for_update("FOR NO KEY UPDATE")  # type: ignore[arg-type]
                    .get()
                )
            parents = _Parents(
                series.get_id(), study.get_id(), patient.get_id(), study.modalities_in_study,
                study.sop_classes_in_study,
            )  # fmt: skip
        else:
            new_series = new_study = False
        self._sql.insert(
            Instance,
            series=parents.series_id,
            sop_instance_uid=rec.sop_instance_uid,
            sop_class_uid=rec.sop_class_uid,
            instance_number=rec.instance_number,
            content_date=rec.content_date,
            content_time=rec.content_time,
            rows=rec.rows,
            columns=rec.columns,
            number_of_frames=rec.number_of_frames,
            specific_character_set=rec.specific_character_set,
            transfer_syntax_uid=item.transfer_syntax_uid,
            path=rel,
            size=item.temp.size,
            checksum=item.temp.checksum,
            received_at=item.received_at,
            calling_ae_title=item.calling_ae_title[:16],
        )
        now = utcnow()
        self._sql.count_up(Series, parents.series_id, now, number_of_series_related_instances=1)
        self._sql.count_up(
            Study,
            parents.study_id,
            now,
            number_of_study_related_instances=1,
            number_of_study_related_series=1 if new_series else 0,
            modalities_in_study=_add_value(parents.modalities_in_study, rec.modality),
            sop_classes_in_study=_add_value(parents.sop_classes_in_study, rec.sop_class_uid),
        )
        self._sql.count_up(
            Patient,
            parents.patient_id,
            now,
            number_of_patient_related_instances=1,
            number_of_patient_related_series=1 if new_series else 0,
            number_of_patient_related_studies=1 if new_study else 0,
        )
        if new_study:
            self._sql.insert(Change, kind="study.created", uid=rec.study_instance_uid, at=now)
        self._sql.insert(Change, kind="instance.stored", uid=rec.sop_instance_uid, at=now)
        return StoreResult(
            disposition, rec.sop_instance_uid, rec.study_instance_uid, self.archive.abspath(rel)
        )

    def _parents(self, rec: InstanceRecord) -> tuple[Series, bool, Study, bool, Patient, bool]:
        new_patient = new_study = new_series = False
        series = Series.get_or_none(Series.series_instance_uid == rec.series_instance_uid)
        if series is not None:
            known = series.study
            return series, False, known, False, known.patient, False
        study = Study.get_or_none(Study.study_instance_uid == rec.study_instance_uid)
        if study is None:
            patient = Patient.get_or_none(
                (Patient.patient_id == rec.patient_id)
                & (Patient.issuer_of_patient_id == rec.issuer_of_patient_id)
            )
            if patient is None:
                patient = Patient.create(
                    patient_id=rec.patient_id,
                    issuer_of_patient_id=rec.issuer_of_patient_id,
                    patient_name=rec.patient_name,
                    patient_name_norm=norm_text(rec.patient_name),
                    patient_birth_date=rec.patient_birth_date,
                    patient_sex=rec.patient_sex,
                )
                new_patient = True
            study = Study.create(
                patient=patient,
                study_instance_uid=rec.study_instance_uid,
                study_date=rec.study_date,
                study_time=rec.study_time,
                accession_number=rec.accession_number,
                study_id=rec.study_id,
                study_description=rec.study_description,
                referring_physician_name=rec.referring_physician_name,
                referring_physician_name_norm=norm_text(rec.referring_physician_name),
                patient_age=rec.patient_age,
                institution_name=rec.institution_name,
            )
            new_study = True
        else:
            patient = study.patient
        series = Series.create(
            study=study,
            series_instance_uid=rec.series_instance_uid,
            modality=rec.modality,
            series_number=rec.series_number,
            series_description=rec.series_description,
            body_part_examined=rec.body_part_examined,
            series_date=rec.series_date,
            series_time=rec.series_time,
            performed_procedure_step_start_date=rec.performed_procedure_step_start_date,
            performed_procedure_step_start_time=rec.performed_procedure_step_start_time,
            protocol_name=rec.protocol_name,
            station_name=rec.station_name,
        )
        new_series = True
        return series, new_series, study, new_study, patient, new_patient

    def _delete_instance(self, inst: Instance) -> None:
        """Remove an instance row and keep every count and summary above it right."""
        series = inst.series
        study = series.study
        patient = study.patient
        inst.delete_instance()
        remaining = Instance.select().where(Instance.series == series).count()
        if remaining == 0:
            series.delete_instance()
        else:
            Series.update(number_of_series_related_instances=remaining).where(
                Series.id == series.id
            ).execute()
        refresh_study(study)
        refresh_patient(patient)


def refresh_study(study: Study) -> None:
    """Recompute a study's counts and summaries from its series; drop it when empty."""
    series = list(Series.select().where(Series.study == study))
    if not series:
        study.delete_instance()
        return
    n_instances = (
        Instance.select().join(Series).where(Series.study == study).count()
    )
    sop_classes = (
        Instance.select(Instance.sop_class_uid)
        .join(Series)
        .where(Series.study == study)
        .distinct()
    )
    Study.update(
        number_of_study_related_series=len(series),
        number_of_study_related_instances=n_instances,
        modalities_in_study="\\".join(sorted({s.modality for s in series if s.modality})),
        sop_classes_in_study="\\".join(sorted({i.sop_class_uid for i in sop_classes})),
    ).where(Study.id == study.id).execute()


def refresh_patient(patient: Patient) -> None:
    """Recompute a patient's counts; drop the patient when no study is left."""
    studies = Study.select().where(Study.patient == patient)
    n_studies = studies.count()
    if n_studies == 0:
        patient.delete_instance()
        return
    n_series = Series.select().join(Study).where(Study.patient == patient).count()
    n_instances = (
        Instance.select().join(Series).join(Study).where(Study.patient == patient).count()
    )
    Patient.update(
        number_of_patient_related_studies=n_studies,
        number_of_patient_related_series=n_series,
        number_of_patient_related_instances=n_instances,
    ).where(Patient.id == patient.id).execute()


class IndexWriter:
    """The one thread of a process that writes instances into the index.

    Args:
        index: Where batches are written.
        max_batch: Most instances committed together.
    """

    def __init__(self, index: Index, max_batch: int = 64) -> None:
        self.index = index
        self.max_batch = max_batch
        self._queue: queue.Queue[_Work | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="index-writer", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, pending: PendingInstance, timeout: float = 300.0) -> StoreResult:
        """Index one instance and return once its transaction is committed.

        Raises:
            StoreError: The index could not take it (the temporary file has been removed).
            DuplicateInstanceError: It is a duplicate and the policy is reject.
        """
        if self._closed:
            self.index.archive.discard(pending.temp.path)
            raise StoreError("the store is shutting down", "Out of resources")
        work = _Work(pending)
        self._queue.put(work)
        if not work.done.wait(timeout):
            raise StoreError("timed out waiting for the index", "Out of resources")
        error, work.outcome.error = work.outcome.error, None
        if error is not None:
            # Not left on the work item: error -> traceback -> this frame -> work -> error
            # would be a reference cycle holding the request's data set until a full GC.
            raise error
        assert work.outcome.result is not None
        return work.outcome.result

    def _run(self) -> None:
        with self.index.db.connection_context():
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < self.max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                self._write(batch)
                if stop:
                    return

    def _write(self, batch: list[_Work]) -> None:
        started = time.perf_counter()
        try:
            results = self.index.store_batch([w.pending for w in batch])
        except BaseException as exc:  # never leave a caller waiting
            results = [StoreError(f"index write failed: {exc}", "Out of resources")] * len(batch)
        for work, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                self.index.archive.discard(work.pending.temp.path)
                work.outcome.error = result
            else:
                work.outcome.result = result
            work.done.set()
        elapsed_ms = 1e3 * (time.perf_counter() - started)
        log.debug("indexed %d instance(s) in %.1f ms", len(batch), elapsed_ms)

    def close(self) -> None:
        """Finish everything queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
