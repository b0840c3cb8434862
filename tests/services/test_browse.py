"""The browse service on SQLite and PostgreSQL: keyset pages, sorts, filters, counts, tags, demo."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from tui_pacs.config import Config
from tui_pacs.model import StudyFilter, StudySort
from tui_pacs.services.browse import Browser, date_range, parse_date, search_tags
from tui_pacs.services.demo import PATIENTS, STUDIES, archive_is_empty, fill_demo
from tui_pacs.services.status import node_status
from tui_pacs.store import heartbeat
from tui_pacs.store.db import use_database
from tui_pacs.store.models import Change, Patient, Study

NAMES = ["MÜLLER^Jürgen", "SMITH^John", "smithers^anna", "GARCÍA LÓPEZ^María", "O'BRIEN^Siobhan"]
MODALITIES = ["CT", "MR", "CT\\SR", "CR", "US\\XA", "PT"]


def fill(config: Config, count: int = 37) -> list[str]:
    """``count`` studies straight into the index; returns their UIDs in insertion order."""
    use_database(config.effective_database_url)
    patients = [
        Patient.create(
            patient_id=f"PID{i:03d}", patient_name=name, patient_name_norm=name.casefold()
        )
        for i, name in enumerate(NAMES)
    ]
    uids = []
    for n in range(count):
        uid = f"1.2.3.{n + 1}"
        Study.create(
            patient=patients[n % len(patients)],
            study_instance_uid=uid,
            # Several studies share a date: ties must not lose or repeat rows across pages.
            study_date=f"202611{(n % 9) + 1:02d}",
            study_time="120000",
            accession_number=f"ACC{n:04d}",
            study_description=f"Study {n % 4}",
            modalities_in_study=MODALITIES[n % len(MODALITIES)],
            number_of_study_related_instances=n % 5,
        )
        uids.append(uid)
    return uids


def walk(browser: Browser, flt: StudyFilter, **options: object) -> list[str]:
    """Every UID, page by page forward."""
    seen: list[str] = []
    page = browser.study_page(flt, limit=5, **options)  # type: ignore[arg-type]
    for _ in range(100):
        seen.extend(s.study_instance_uid for s in page.studies)
        if not page.has_next:
            return seen
        page = browser.study_page(flt, limit=5, after=page.last_key, **options)  # type: ignore[arg-type]
    raise AssertionError("paging does not end")


@pytest.mark.parametrize("sort", list(StudySort))
def test_pages_cover_every_study_once_in_each_sort(config: Config, sort: StudySort) -> None:
    """Walking the pages forward and backward yields every study exactly once, in sort order."""
    uids = fill(config)
    browser = Browser(config)
    for descending in (True, False):
        forward = walk(browser, StudyFilter(), sort=sort, descending=descending)
        assert sorted(forward) == sorted(uids)
        page = browser.study_page(
            StudyFilter(), sort=sort, descending=descending, limit=5, last=True
        )
        backward: list[str] = []
        for _ in range(100):
            backward[:0] = [s.study_instance_uid for s in page.studies]
            if not page.has_previous:
                break
            page = browser.study_page(
                StudyFilter(), sort=sort, descending=descending, limit=5, before=page.first_key
            )
        assert backward == forward


def test_date_order_and_page_flags(config: Config) -> None:
    """Newest first by default; the first page has no previous, the last no next."""
    fill(config)
    browser = Browser(config)
    first = browser.study_page(StudyFilter(), limit=5)
    assert [s.study_date for s in first.studies] == sorted(
        (s.study_date for s in first.studies), reverse=True
    )
    assert first.studies[0].study_date == "20261109"
    assert not first.has_previous and first.has_next
    last = browser.study_page(StudyFilter(), limit=5, last=True)
    assert last.has_previous and not last.has_next
    assert browser.study_page(StudyFilter(patient_id="nobody"), limit=5).studies == ()


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (StudyFilter(patient_name="smith"), {"SMITH^John", "smithers^anna"}),
        (StudyFilter(patient_name="SMITH^J"), {"SMITH^John"}),
        (StudyFilter(patient_name="müller"), {"MÜLLER^Jürgen"}),
        (StudyFilter(patient_name="maría"), {"GARCÍA LÓPEZ^María"}),  # a given name
        (StudyFilter(patient_name="lópez"), {"GARCÍA LÓPEZ^María"}),  # a second family name
        (StudyFilter(patient_name="*ien*"), {"O'BRIEN^Siobhan"}),
        (StudyFilter(patient_name="o'b"), {"O'BRIEN^Siobhan"}),
        (StudyFilter(patient_name="sm?th^*"), {"SMITH^John"}),
        (StudyFilter(patient_name="%"), set()),  # LIKE's wildcards are plain characters here
        (StudyFilter(patient_name="_mith"), set()),
    ],
)
def test_name_filter(config: Config, flt: StudyFilter, expected: set[str]) -> None:
    """Names match case-insensitively by prefix of the name or of any component, or by pattern."""
    fill(config)
    browser = Browser(config)
    found = {s.patient_name for s in browser.study_page(flt, limit=100).studies}
    assert found == expected
    assert browser.count_studies(flt) == len(browser.study_page(flt, limit=100).studies)


def test_id_accession_date_and_modality_filters(config: Config) -> None:
    """IDs and accessions by prefix, date ranges (open ends), a modality among several."""
    fill(config)
    browser = Browser(config)

    def count(**kwargs: str) -> int:
        flt = StudyFilter(**kwargs)
        n = len(browser.study_page(flt, limit=100).studies)
        assert browser.count_studies(flt) == n
        return n

    assert count(patient_id="PID001") == 8
    assert count(accession_number="ACC000") == 10
    assert count(accession_number="ACC0012") == 1
    assert count(study_date_from="20261108") == 8
    assert count(study_date_to="20261101") == 5
    assert count(study_date_from="20261102", study_date_to="20261103") == 8
    assert count(modality="CT") == 13  # "CT" and "CT\SR"
    assert count(modality="SR") == 6
    assert count(modality="XA") == 6
    assert count(modality="C") == 0  # a whole value, not a prefix
    assert count(modality="ct", study_date_from="20261105") == 6


def test_series_instances_tags_and_changes(config: Config) -> None:
    """Series and instances of a demo study, its tag tree, and the change feed after an id."""
    assert archive_is_empty(config)
    summary = fill_demo(config, today=date(2026, 11, 20))
    assert (summary.patients, summary.studies) == (len(PATIENTS), len(STUDIES))
    assert not archive_is_empty(config)
    browser = Browser(config)
    page = browser.study_page(StudyFilter(patient_name="garcía"), limit=10)
    assert {s.patient_name for s in page.studies} == {"GARCÍA LÓPEZ^María"}  # UTF-8 (ISO_IR 192)
    study = page.studies[0]
    series = browser.series(study.study_instance_uid)
    assert [s.series_number for s in series] == list(range(1, len(series) + 1))
    assert sum(s.number_of_series_related_instances for s in series) == (
        study.number_of_study_related_instances
    )
    instances = browser.instances(series[0].series_instance_uid)
    assert [i.instance_number for i in instances] == list(range(1, len(instances) + 1))
    tree = browser.tag_tree(instances[0].sop_instance_uid)
    assert tree[0].keyword == "FileMetaInformationGroupLength"
    assert any(n.keyword == "PatientName" and n.value == "GARCÍA LÓPEZ^María" for n in tree)
    (sequence,) = search_tags(tree, "CodingSchemeDesignator")
    assert sequence.keyword == "ProcedureCodeSequence" and sequence.children[0].keyword == "Item 1"
    assert [n.keyword for n in search_tags(tree, "(0010,0020)")] == ["PatientID"]
    assert [n.keyword for n in search_tags(tree, "00100020")] == ["PatientID"]
    assert [n.keyword for n in search_tags(tree, "PatientSex")] == ["PatientSex"]
    last = browser.last_change_id()
    assert last > 0 and browser.changes_since(last) == []
    Change.create(kind="study.created", uid="1.2.3")
    (event,) = browser.changes_since(last)
    assert (event.kind, event.uid) == ("study.created", "1.2.3")


def test_node_status_reads_the_heartbeat(config: Config) -> None:
    """No node: None; a live heartbeat row: its AE title, port and figures."""
    assert node_status(config) is None
    heartbeat.beat("test-node", ae_title="HB_NODE", port=4242, associations=2, jobs_running=1)
    status = node_status(config)
    assert status is not None
    assert (status.ae_title, status.port, status.associations, status.jobs_running) == (
        "HB_NODE",
        4242,
        2,
        1,
    )


def test_date_presets_and_typed_dates() -> None:
    """Presets count back from the given day; typed dates in three spellings, bad ones refused."""
    day = date(2026, 3, 1)
    assert date_range("any", day) == ("", "")
    assert date_range("today", day) == ("20260301", "20260301")
    assert date_range("yesterday", day) == ("20260228", "20260228")
    assert date_range("last-7-days", day) == ("20260223", "20260301")
    assert parse_date("2026-03-01") == parse_date("01.03.2026") == parse_date("20260301")
    assert parse_date(" ") == ""
    for bad in ("2026-02-30", "yesterday", "2026"):
        with pytest.raises(ValueError):
            parse_date(bad)
    with pytest.raises(ValueError):
        date_range("someday", day)


def test_demo_is_deterministic() -> None:
    """Same seed and day, same UIDs; another seed, other UIDs."""
    from tui_pacs.services.demo import demo_datasets

    def uids(seed: int) -> list[str]:
        return [
            ds.SOPInstanceUID for ds in itertools.islice(demo_datasets(date(2026, 1, 5), seed), 20)
        ]

    assert uids(1) == uids(1)
    assert not set(uids(1)) & set(uids(2))
