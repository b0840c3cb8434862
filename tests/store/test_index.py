"""The index: counts, duplicate policies, group commit, and failures that leave nothing."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import CTImageStorage, MRImageStorage

from tests.store.synthetic import (
    archive_files,
    assert_counts_consistent,
    make_dataset,
    new_uid,
    open_ingestor,
    row_counts,
    sha256,
    temp_files,
    to_bytes,
)
from tui_pacs.config import Config
from tui_pacs.errors import DuplicateInstanceError, StoreError
from tui_pacs.model import DuplicatePolicy, StoreDisposition, StoreResult
from tui_pacs.services.ingest import Ingestor
from tui_pacs.store.archive import relative_path
from tui_pacs.store.models import Change, Instance, Patient, Series, Study

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
GSPS = "1.2.840.10008.5.1.4.1.1.11.1"


def _store(ing: Ingestor, **kwargs: object) -> StoreResult:
    return ing.store_bytes(to_bytes(make_dataset(**kwargs)))  # type: ignore[arg-type]


def _study(uid: str) -> Study:
    return Study.get(Study.study_instance_uid == uid)


def _series(uid: str) -> Series:
    return Series.get(Series.series_instance_uid == uid)


def _patient(pid: str) -> Patient:
    return Patient.get(Patient.patient_id == pid)


def _assert_archive_matches_index(root: Path) -> None:
    """Exactly one archived file per instance row, with the row's size and checksum."""
    files = archive_files(root)
    rows = {i.path: i for i in Instance.select()}
    assert set(files) == set(rows)
    for rel, inst in rows.items():
        assert files[rel] == inst.checksum
        assert (root / rel).stat().st_size == inst.size
    assert temp_files(root) == []


class Plan:
    """UIDs of a small archive: two patients, three studies, four series, eight instances."""

    def __init__(self) -> None:
        self.st_a, self.st_b, self.st_c = new_uid(), new_uid(), new_uid()
        self.se_a1, self.se_a2, self.se_b1, self.se_c1 = new_uid(), new_uid(), new_uid(), new_uid()
        self.items: list[dict[str, object]] = []
        for n in range(3):
            self._add("PAT1", self.st_a, self.se_a1, "CT", CTImageStorage, n)
        for n in range(2):
            self._add("PAT1", self.st_a, self.se_a2, "SR", BASIC_TEXT_SR, n)
        self._add("PAT1", self.st_b, self.se_b1, "MR", MRImageStorage, 0)
        for n in range(2):
            self._add("PAT2", self.st_c, self.se_c1, "CT", CTImageStorage, n)

    def _add(
        self, pid: str, study: str, series: str, modality: str, sop_class: str, n: int
    ) -> None:
        self.items.append(
            dict(
                patient_id=pid,
                patient_name=f"Name^{pid}",
                study_uid=study,
                series_uid=series,
                sop_uid=new_uid(),
                modality=modality,
                sop_class_uid=sop_class,
                instance_number=n + 1,
            )
        )

    def of(self, series: str) -> list[dict[str, object]]:
        return [i for i in self.items if i["series_uid"] == series]

    def store(self, ing: Ingestor) -> None:
        order = list(self.items)
        random.Random(7).shuffle(order)  # counts must not depend on arrival order
        for item in order:
            assert _store(ing, **item).disposition is StoreDisposition.STORED


def test_counts_across_patients_studies_series(config: Config) -> None:
    """Series/study/patient counts, ModalitiesInStudy and SOPClassesInStudy follow arrivals."""
    plan = Plan()
    with open_ingestor(config) as ing:
        plan.store(ing)
    a, b, c = _study(plan.st_a), _study(plan.st_b), _study(plan.st_c)
    assert (a.number_of_study_related_series, a.number_of_study_related_instances) == (2, 5)
    assert (b.number_of_study_related_series, b.number_of_study_related_instances) == (1, 1)
    assert (c.number_of_study_related_series, c.number_of_study_related_instances) == (1, 2)
    assert a.modalities_in_study == "CT\\SR"
    assert a.sop_classes_in_study == "\\".join(sorted([CTImageStorage, BASIC_TEXT_SR]))
    assert (b.modalities_in_study, b.sop_classes_in_study) == ("MR", MRImageStorage)
    assert (c.modalities_in_study, c.sop_classes_in_study) == ("CT", CTImageStorage)
    counts = {
        uid: _series(uid).number_of_series_related_instances
        for uid in (plan.se_a1, plan.se_a2, plan.se_b1, plan.se_c1)
    }
    assert counts == {plan.se_a1: 3, plan.se_a2: 2, plan.se_b1: 1, plan.se_c1: 2}
    p1, p2 = _patient("PAT1"), _patient("PAT2")
    assert (
        p1.number_of_patient_related_studies,
        p1.number_of_patient_related_series,
        p1.number_of_patient_related_instances,
    ) == (2, 3, 6)
    assert (
        p2.number_of_patient_related_studies,
        p2.number_of_patient_related_series,
        p2.number_of_patient_related_instances,
    ) == (1, 1, 2)
    assert a.patient_id == p1.id and c.patient_id == p2.id
    assert row_counts() == {"patient": 2, "study": 3, "series": 4, "instance": 8}
    assert_counts_consistent()
    _assert_archive_matches_index(config.storage_path)
    kinds = Counter(ch.kind for ch in Change.select())
    assert kinds == {"study.created": 3, "instance.stored": 8}


def test_overwrite_that_moves_instances_keeps_counts_right(config: Config) -> None:
    """Overwrites moving instances to other series, studies and patients keep every count right."""
    plan = Plan()
    root = config.storage_path
    with open_ingestor(config, duplicate_policy=DuplicatePolicy.OVERWRITE) as ing:
        plan.store(ing)
        st_d, se_d = new_uid(), new_uid()
        lone = dict(
            patient_id="PAT3",
            patient_name="Lone^Patient",
            study_uid=st_d,
            series_uid=se_d,
            sop_uid=new_uid(),
            modality="OT",
        )
        _store(ing, **lone)
        assert row_counts() == {"patient": 3, "study": 4, "series": 5, "instance": 9}

        # (a) one CT instance of A1 becomes a presentation state in a new series A3 of study A.
        moved = dict(plan.of(plan.se_a1)[0])
        old_path = Instance.get(Instance.sop_instance_uid == moved["sop_uid"]).path
        se_a3 = new_uid()
        moved.update(series_uid=se_a3, modality="PR", sop_class_uid=GSPS)
        result = _store(ing, **moved)
        assert result.disposition is StoreDisposition.OVERWRITTEN
        assert not (root / old_path).exists()
        inst = Instance.get(Instance.sop_instance_uid == moved["sop_uid"])
        assert inst.series.series_instance_uid == se_a3 and inst.sop_class_uid == GSPS
        assert root / inst.path == result.path
        assert _series(plan.se_a1).number_of_series_related_instances == 2
        assert _series(se_a3).number_of_series_related_instances == 1
        a = _study(plan.st_a)
        assert (a.number_of_study_related_series, a.number_of_study_related_instances) == (3, 5)
        assert a.modalities_in_study == "CT\\PR\\SR"
        assert a.sop_classes_in_study == "\\".join(sorted([CTImageStorage, BASIC_TEXT_SR, GSPS]))
        p1 = _patient("PAT1")
        assert (p1.number_of_patient_related_series, p1.number_of_patient_related_instances) == (
            4,
            6,
        )
        assert_counts_consistent()

        # (b) the only instance of study B moves to a new series of PAT2's study C: B goes away.
        moved = dict(plan.of(plan.se_b1)[0])
        se_c2 = new_uid()
        moved.update(
            patient_id="PAT2", patient_name="Name^PAT2", study_uid=plan.st_c, series_uid=se_c2
        )
        assert _store(ing, **moved).disposition is StoreDisposition.OVERWRITTEN
        assert Study.get_or_none(Study.study_instance_uid == plan.st_b) is None
        assert Series.get_or_none(Series.series_instance_uid == plan.se_b1) is None
        c = _study(plan.st_c)
        assert (c.number_of_study_related_series, c.number_of_study_related_instances) == (2, 3)
        assert (c.modalities_in_study, c.sop_classes_in_study) == (
            "CT\\MR",
            "\\".join(sorted([CTImageStorage, MRImageStorage])),
        )
        p1, p2 = _patient("PAT1"), _patient("PAT2")
        assert (
            p1.number_of_patient_related_studies,
            p1.number_of_patient_related_series,
            p1.number_of_patient_related_instances,
        ) == (1, 3, 5)
        assert (
            p2.number_of_patient_related_studies,
            p2.number_of_patient_related_series,
            p2.number_of_patient_related_instances,
        ) == (1, 2, 3)
        assert_counts_consistent()

        # (c) both SR instances come back as CT images of A1: A2, SR and its class go away.
        for item in plan.of(plan.se_a2):
            again = dict(item, series_uid=plan.se_a1, modality="CT", sop_class_uid=CTImageStorage)
            assert _store(ing, **again).disposition is StoreDisposition.OVERWRITTEN
        assert Series.get_or_none(Series.series_instance_uid == plan.se_a2) is None
        a = _study(plan.st_a)
        assert (a.number_of_study_related_series, a.number_of_study_related_instances) == (2, 5)
        assert a.modalities_in_study == "CT\\PR"
        assert a.sop_classes_in_study == "\\".join(sorted([CTImageStorage, GSPS]))
        assert _series(plan.se_a1).number_of_series_related_instances == 4
        assert_counts_consistent()

        # (d) the lone patient's only instance moves into study A: PAT3 goes away.
        again = dict(
            lone, patient_id="PAT1", study_uid=plan.st_a, series_uid=plan.se_a1, modality="CT"
        )
        assert _store(ing, **again).disposition is StoreDisposition.OVERWRITTEN
        assert Patient.get_or_none(Patient.patient_id == "PAT3") is None
        assert _study(plan.st_a).number_of_study_related_instances == 6
        assert _patient("PAT1").number_of_patient_related_instances == 6
        assert row_counts() == {"patient": 2, "study": 2, "series": 4, "instance": 9}
        assert_counts_consistent()
        _assert_archive_matches_index(root)


@pytest.mark.parametrize("policy", list(DuplicatePolicy))
def test_duplicate_policies(config: Config, policy: DuplicatePolicy) -> None:
    """keep-first keeps, overwrite replaces, reject refuses; an identical copy is always kept."""
    root = config.storage_path
    study, series = new_uid(), new_uid()
    first = make_dataset(study_uid=study, series_uid=series, description="first")
    changed = make_dataset(
        study_uid=study, series_uid=series, sop_uid=first.SOPInstanceUID, description="second"
    )
    first_bytes, changed_bytes = to_bytes(first), to_bytes(changed)
    assert first_bytes != changed_bytes
    with open_ingestor(config, duplicate_policy=policy) as ing:
        stored = ing.store_bytes(first_bytes)
        assert stored.disposition is StoreDisposition.STORED
        before = archive_files(root)
        rows_before = row_counts()

        again = ing.store_bytes(first_bytes)
        assert again.disposition is StoreDisposition.DUPLICATE_KEPT
        assert again.path == stored.path
        assert archive_files(root) == before and row_counts() == rows_before

        if policy is DuplicatePolicy.REJECT:
            with pytest.raises(DuplicateInstanceError, match="already archived"):
                ing.store_bytes(changed_bytes)
        else:
            result = ing.store_bytes(changed_bytes)
            expected = {
                DuplicatePolicy.KEEP_FIRST: StoreDisposition.DUPLICATE_KEPT,
                DuplicatePolicy.OVERWRITE: StoreDisposition.OVERWRITTEN,
            }[policy]
            assert result.disposition is expected
        inst = Instance.get(Instance.sop_instance_uid == first.SOPInstanceUID)
        current = (root / inst.path).read_bytes()
        if policy is DuplicatePolicy.OVERWRITE:
            assert dcmread(root / inst.path).SeriesDescription == "second"
            assert not stored.path.exists()
            assert _series(series).series_description == "second"
            latest = changed_bytes
        else:
            assert archive_files(root) == before
            assert b"first" in current and b"second" not in current
            latest = first_bytes
        assert row_counts() == rows_before
        assert len(archive_files(root)) == 1
        _assert_archive_matches_index(root)
        assert_counts_consistent()

        # Whatever the policy, resending the copy that is archived now changes nothing.
        snapshot = archive_files(root)
        assert ing.store_bytes(latest).disposition is StoreDisposition.DUPLICATE_KEPT
        assert archive_files(root) == snapshot
        assert Change.select().where(Change.kind == "instance.stored").count() == (
            2 if policy is DuplicatePolicy.OVERWRITE else 1
        )


def test_concurrent_submitters_lose_nothing(config: Config) -> None:
    """8 threads x 50 instances over shared studies and series: every one indexed, counts right."""
    n_threads, per_thread = 8, 50
    studies = [new_uid() for _ in range(4)]
    series = {s: [new_uid() for _ in range(3)] for s in studies}
    modality = ["CT", "MR", "SR"]
    jobs: list[list[bytes]] = []
    expected_series: Counter[str] = Counter()
    sops: set[str] = set()
    for t in range(n_threads):
        blobs = []
        for i in range(per_thread):
            study = studies[(t + i) % 4]
            k = i % 3
            ds = make_dataset(
                patient_id=f"PAT{(t + i) % 4 % 2}",
                study_uid=study,
                series_uid=series[study][k],
                modality=modality[k],
                instance_number=t * 1000 + i,
            )
            sops.add(ds.SOPInstanceUID)
            expected_series[series[study][k]] += 1
            blobs.append(to_bytes(ds))
        jobs.append(blobs)

    errors: list[BaseException] = []
    results: list[StoreResult] = []
    lock = threading.Lock()
    with open_ingestor(config) as ing:
        batch_sizes: list[int] = []
        real = ing.index.store_batch

        def counting(items: list) -> list:
            batch_sizes.append(len(items))
            return real(items)

        ing.index.store_batch = counting  # type: ignore[method-assign]
        start = threading.Barrier(n_threads)

        def worker(blobs: list[bytes]) -> None:
            start.wait()
            for blob in blobs:
                try:
                    r = ing.store_bytes(blob)
                except BaseException as exc:
                    with lock:
                        errors.append(exc)
                else:
                    with lock:
                        results.append(r)

        threads = [threading.Thread(target=worker, args=(b,)) for b in jobs]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
        assert not any(th.is_alive() for th in threads)
    assert errors == []
    assert len(results) == n_threads * per_thread
    assert {r.disposition for r in results} == {StoreDisposition.STORED}
    assert {r.sop_instance_uid for r in results} == sops
    assert sum(batch_sizes) == n_threads * per_thread
    assert {i.sop_instance_uid for i in Instance.select()} == sops
    for uid, n in expected_series.items():
        assert _series(uid).number_of_series_related_instances == n
    for study in studies:
        assert _study(study).number_of_study_related_instances == 100
        assert _study(study).number_of_study_related_series == 3
        assert _study(study).modalities_in_study == "CT\\MR\\SR"
    assert row_counts() == {"patient": 2, "study": 4, "series": 12, "instance": 400}
    assert_counts_consistent()
    _assert_archive_matches_index(config.storage_path)


def _wait_until(predicate, timeout: float = 20.0) -> bool:  # noqa: ANN001
    """Poll a condition owned by another thread (bounded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def test_group_commit_batches_waiting_instances_and_isolates_a_bad_one(config: Config) -> None:
    """Instances queued behind a commit share the next; one that fails does not fail the rest."""
    study, series = new_uid(), new_uid()
    blobs = [
        to_bytes(make_dataset(study_uid=study, series_uid=series, instance_number=n))
        for n in range(8)
    ]
    bad_ds = make_dataset(study_uid=new_uid(), series_uid=new_uid())
    # A plain file where the bad instance's study folder must go: its link cannot succeed.
    rel = relative_path(bad_ds.StudyInstanceUID, bad_ds.SeriesInstanceUID, bad_ds.SOPInstanceUID)
    blocker = config.storage_path / rel.split("/")[0] / bad_ds.StudyInstanceUID
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")

    with open_ingestor(config) as ing:
        sizes: list[int] = []
        real = ing.index.store_batch

        entered = threading.Event()

        def slow_first(items: list) -> list:
            if not entered.is_set():  # hold the first commit until the others queue behind it
                entered.set()
                assert _wait_until(lambda: ing.writer._queue.qsize() >= 8)
            sizes.append(len(items))
            return real(items)

        ing.index.store_batch = slow_first  # type: ignore[method-assign]
        outcomes: dict[int, object] = {}

        def submit(k: int, blob: bytes) -> None:
            try:
                outcomes[k] = ing.store_bytes(blob)
            except BaseException as exc:
                outcomes[k] = exc

        first = threading.Thread(target=submit, args=(0, blobs[0]))
        first.start()
        assert entered.wait(20)
        others = [threading.Thread(target=submit, args=(k, b)) for k, b in enumerate(blobs[1:], 1)]
        others.append(threading.Thread(target=submit, args=(99, to_bytes(bad_ds))))
        for th in others:
            th.start()
        for th in [first, *others]:
            th.join(timeout=60)
    assert sizes[0] == 1 and sizes[1] == 8, sizes
    assert isinstance(outcomes[99], StoreError)
    for k in range(8):
        assert isinstance(outcomes[k], StoreResult), outcomes[k]
    assert _series(series).number_of_series_related_instances == 8
    assert Instance.get_or_none(Instance.sop_instance_uid == bad_ds.SOPInstanceUID) is None
    assert blocker.read_text() == "in the way"
    blocker.unlink()
    _assert_archive_matches_index(config.storage_path)
    assert_counts_consistent()


def test_file_is_durable_before_commit(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Order: temp file fsynced, linked into place, folders fsynced, then the index commit."""
    events: list[str] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        events.append(
            "fsync-temp"
            if target.endswith(".tmp")
            else "fsync-dir"
            if os.path.isdir(target)
            else "fsync-other"
        )
        real_fsync(fd)

    def link(src: str, dst: str) -> None:
        events.append("link")
        real_link(src, dst)

    ds = make_dataset(study_uid=new_uid(), series_uid=new_uid())
    with open_ingestor(config) as ing:
        real_commit = ing.db.commit

        def commit() -> None:
            events.append("commit")
            real_commit()

        monkeypatch.setattr(ing.db, "commit", commit)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "link", link)
        result = ing.store_bytes(to_bytes(ds))
        monkeypatch.undo()
    assert result.disposition is StoreDisposition.STORED
    steps = [e for e in events if e in ("fsync-temp", "link", "fsync-dir", "commit")]
    first_dir = steps.index("fsync-dir")
    assert steps[:2] == ["fsync-temp", "link"]
    assert set(steps[2:-1]) == {"fsync-dir"} and first_dir == 2
    assert steps[-1] == "commit"
    assert result.path.stat().st_nlink == 1  # the temporary name is gone


def test_failing_index_write_leaves_no_file(config: Config) -> None:
    """When the database refuses the write, the linked file and the temp file are both removed."""
    study, series = new_uid(), new_uid()
    with open_ingestor(config) as ing:
        ok = ing.store_bytes(to_bytes(make_dataset(study_uid=study, series_uid=series)))
        before = archive_files(config.storage_path)
        ing.db.drop_tables([Change])  # the next write of the feed fails inside the transaction
        failing = make_dataset(study_uid=new_uid(), series_uid=new_uid())
        with pytest.raises(StoreError) as info:
            ing.store_bytes(to_bytes(failing))
        assert info.value.title == "Out of resources"
        assert archive_files(config.storage_path) == before
        assert temp_files(config.storage_path) == []
        assert Instance.get_or_none(Instance.sop_instance_uid == failing.SOPInstanceUID) is None
        assert row_counts() == {"patient": 1, "study": 1, "series": 1, "instance": 1}
        # The writer survives: once the table is back the same instance goes in.
        ing.db.create_tables([Change])
        again = ing.store_bytes(to_bytes(failing))
        assert again.disposition is StoreDisposition.STORED
    assert ok.path.exists() and again.path.exists()
    _assert_archive_matches_index(config.storage_path)
    assert_counts_consistent()


def test_unwritable_archive_path_leaves_nothing(config: Config) -> None:
    """A link that cannot be made fails the store with nothing left in the archive or the index."""
    ds = make_dataset(study_uid=new_uid(), series_uid=new_uid())
    rel = relative_path(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    blocker = config.storage_path / rel.split("/")[0]
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the bucket folder goes")
    with open_ingestor(config) as ing, pytest.raises(StoreError):
        ing.store_bytes(to_bytes(ds))
    assert temp_files(config.storage_path) == []
    assert row_counts() == {"patient": 0, "study": 0, "series": 0, "instance": 0}
    assert Change.select().count() == 0
    assert blocker.read_text() == "a file where the bucket folder goes"


def test_closed_writer_refuses_and_cleans_up(sqlite_config: Config) -> None:
    """After close, a store is refused as 'shutting down' and its temporary file is removed."""
    with open_ingestor(sqlite_config) as ing:
        ing.writer.close()
        with pytest.raises(StoreError, match="shutting down"):
            ing.store_bytes(to_bytes(make_dataset(study_uid=new_uid(), series_uid=new_uid())))
        assert temp_files(sqlite_config.storage_path) == []


def test_leftover_file_at_final_path_survives_a_store(config: Config) -> None:
    """A stray file where the instance's file would go is kept; the instance gets its own name."""
    ds = make_dataset(study_uid=new_uid(), series_uid=new_uid())
    rel = relative_path(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    leftover = config.storage_path / rel
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"left by a crash before the index commit")
    with open_ingestor(config) as ing:
        result = ing.store_bytes(to_bytes(ds))
    assert result.disposition is StoreDisposition.STORED
    assert result.path != leftover and result.path.parent == leftover.parent
    assert leftover.read_bytes() == b"left by a crash before the index commit"
    inst = Instance.get()
    assert config.storage_path / inst.path == result.path
    assert sha256(result.path) == inst.checksum
