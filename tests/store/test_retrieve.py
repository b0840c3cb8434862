"""Retrieve identifiers (PS3.4 C.4.2.2.1) resolved to archived instances (SQLite, PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import peewee as pw
import pytest
from pydicom.dataset import Dataset

from tests.store.synthetic import make_dataset, new_uid, open_ingestor, to_bytes
from tui_pacs.config import Config
from tui_pacs.store.models import database_proxy
from tui_pacs.store.retrieve import (
    InformationModel,
    RetrieveIdentifierError,
    RetrieveLevel,
    parse_identifier,
    retrieve_instances,
)

PATIENT_ROOT = InformationModel.PATIENT_ROOT
STUDY_ROOT = InformationModel.STUDY_ROOT


def identifier(**keys: object) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


@dataclass
class Holdings:
    """What the test archive holds: UIDs by patient / study / series, in instance order."""

    root: Path
    studies: dict[str, list[str]]  # study uid -> series uids
    series: dict[str, list[str]]  # series uid -> sop uids
    patients: dict[str, list[str]]  # patient id -> study uids

    def sops(self, *, study: str | None = None, patient: str | None = None) -> list[str]:
        studies = [study] if study else self.patients[patient or ""]
        return [sop for s in studies for ser in self.studies[s] for sop in self.series[ser]]


@pytest.fixture
def holdings(config: Config) -> Holdings:
    """P1 has a study of 2 series (3 + 2 instances) and a study of 1; P2 one study of 2."""
    layout = {"P1": [[3, 2], [1]], "P2": [[2]]}
    held = Holdings(config.storage_path, {}, {}, {})
    with open_ingestor(config) as ingestor:
        for patient, studies in layout.items():
            held.patients[patient] = []
            for series_counts in studies:
                study = new_uid()
                held.patients[patient].append(study)
                held.studies[study] = []
                for number, count in enumerate(series_counts, start=1):
                    series = new_uid()
                    held.studies[study].append(series)
                    held.series[series] = []
                    for i in range(1, count + 1):
                        ds = make_dataset(patient_id=patient, study_uid=study, series_uid=series,
                                          instance_number=i, series_number=number)
                        ingestor.store_bytes(to_bytes(ds))
                        held.series[series].append(ds.SOPInstanceUID)
    return held


@pytest.fixture
def db(holdings: Holdings) -> pw.Database:
    """The test database, its connection closed (retrieve_instances opens its own)."""
    database = database_proxy.obj
    assert database is not None and database.is_closed()
    return database


def uids(found: list) -> list[str]:
    return [item.sop_instance_uid for item in found]


def test_each_level_of_both_roots(config: Config, holdings: Holdings, db: pw.Database) -> None:
    """PATIENT, STUDY, SERIES and IMAGE name exactly their instances, in series/instance order."""
    study1, study2 = holdings.patients["P1"]
    series_a, series_b = holdings.studies[study1]
    run = lambda ident, model: uids(  # noqa: E731
        retrieve_instances(ident, model, config.storage_path, db)
    )
    assert run(identifier(QueryRetrieveLevel="PATIENT", PatientID="P1"), PATIENT_ROOT) == (
        holdings.sops(patient="P1")
    )
    for model in (PATIENT_ROOT, STUDY_ROOT):
        assert run(identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=study1), model) == (
            holdings.sops(study=study1)
        )
        assert run(identifier(QueryRetrieveLevel="SERIES", StudyInstanceUID=study1,
                              SeriesInstanceUID=series_b), model) == holdings.series[series_b]
        sop = holdings.series[series_a][1]
        assert run(identifier(QueryRetrieveLevel="IMAGE", StudyInstanceUID=study1,
                              SeriesInstanceUID=series_a, SOPInstanceUID=sop), model) == [sop]
    found = retrieve_instances(identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=study2),
                               STUDY_ROOT, config.storage_path, db)
    assert len(found) == 1 and found[0].path.is_file()
    assert found[0].path.is_relative_to(config.storage_path)
    assert found[0].transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert db.is_closed(), "the connection opened for the lookup is closed again"


def test_uid_lists_and_upper_keys(config: Config, holdings: Holdings, db: pw.Database) -> None:
    """Lists of UIDs match each; upper-level keys, when given, must match too."""
    study1, study2 = holdings.patients["P1"]
    (study3,) = holdings.patients["P2"]
    series_a, series_b = holdings.studies[study1]

    def run(ident: Dataset, model: InformationModel = STUDY_ROOT) -> set[str]:
        return set(uids(retrieve_instances(ident, model, config.storage_path, db)))

    assert run(identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=[study1, study3])) == {
        *holdings.sops(study=study1), *holdings.sops(study=study3)
    }
    assert run(identifier(QueryRetrieveLevel="SERIES", SeriesInstanceUID=[series_a, series_b])) == (
        set(holdings.sops(study=study1))
    )
    sops = holdings.series[series_a][:2] + holdings.series[series_b][:1]
    assert run(identifier(QueryRetrieveLevel="IMAGE", SOPInstanceUID=sops)) == set(sops)
    # Upper keys constrain: the right study finds the series, another study finds nothing.
    assert run(identifier(QueryRetrieveLevel="SERIES", StudyInstanceUID=study2,
                          SeriesInstanceUID=series_a)) == set()
    assert run(identifier(QueryRetrieveLevel="STUDY", PatientID="P2", StudyInstanceUID=study1),
               PATIENT_ROOT) == set()
    assert run(identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=new_uid())) == set()


def test_long_uid_lists_are_chunked(config: Config, holdings: Holdings, db: pw.Database) -> None:
    """A list longer than one IN (...) chunk still finds every listed instance."""
    wanted = [sop for sops in holdings.series.values() for sop in sops]
    listed = [new_uid() for _ in range(1200)] + wanted
    found = retrieve_instances(identifier(QueryRetrieveLevel="IMAGE", SOPInstanceUID=listed),
                               STUDY_ROOT, config.storage_path, db)
    assert sorted(uids(found)) == sorted(wanted)


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # deliberately bad values
@pytest.mark.parametrize(
    ("model", "keys", "message"),
    [
        (STUDY_ROOT, {}, "QueryRetrieveLevel .* missing"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "FRAME"}, "not a level"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "PATIENT", "PatientID": "P1"}, "Study Root"),
        (PATIENT_ROOT, {"QueryRetrieveLevel": "PATIENT"}, "needs a PatientID"),
        (PATIENT_ROOT, {"QueryRetrieveLevel": "PATIENT", "PatientID": "P*"}, "wildcards"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "STUDY"}, "needs StudyInstanceUID"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": ""}, "needs Study"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": "1.2"}, "SeriesInst"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "IMAGE", "SeriesInstanceUID": "1.2"}, "SOPInstance"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "1.2.*"}, "wildcards"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "1.2.abc"}, "valid"),
    ],
)
def test_invalid_identifiers(model: InformationModel, keys: dict[str, str], message: str) -> None:
    """Identifiers that do not name objects are refused with a reason (the SCP answers 0xA900)."""
    with pytest.raises(RetrieveIdentifierError, match=message):
        parse_identifier(identifier(**keys), model)


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # deliberately bad values
def test_identifier_values_are_cleaned() -> None:
    """Padding is not significant, the level is case-folded and repeated UIDs count once."""
    keys = parse_identifier(
        identifier(QueryRetrieveLevel="series ", StudyInstanceUID="1.2.3 ",
                   SeriesInstanceUID=["1.2.3.4", "1.2.3.4", "1.2.3.5"]),
        STUDY_ROOT,
    )
    assert keys.level is RetrieveLevel.SERIES
    assert keys.study_instance_uids == ("1.2.3",)
    assert keys.series_instance_uids == ("1.2.3.4", "1.2.3.5")
    assert keys.sop_instance_uids is None
