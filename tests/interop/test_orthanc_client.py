"""Orthanc as the client: its REST API queries our node (C-FIND) and retrieves from it (C-MOVE)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.interop.qr_data import Study, node_config, running_node, write_corpus
from tests.peers import OrthancProcess, free_port
from tui_pacs.model import RemoteNode
from tui_pacs.services.node import Node

pytestmark = pytest.mark.interop


class Setup:
    def __init__(self, orthanc: OrthancProcess, node: Node, studies: list[Study]) -> None:
        self.orthanc = orthanc
        self.node = node
        self.studies = studies

    def query(self, level: str, query: dict[str, str]) -> list[dict[str, Any]]:
        """Ask Orthanc to C-FIND our node; return the answers as {keyword: value}."""
        created: Any = self.orthanc.post(
            "/modalities/tuipacs/query", {"Level": level, "Query": query}
        )
        qid = created["ID"]
        answers: Any = self.orthanc.get(f"/queries/{qid}/answers")
        return [
            self.orthanc.get(f"/queries/{qid}/answers/{i}/content?simplify")  # type: ignore[misc]
            for i in answers
        ]

    def orthanc_instances(self, study_uid: str) -> set[str]:
        found: Any = self.orthanc.post(
            "/tools/find",
            {"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}, "Expand": True},
        )
        return {f["MainDicomTags"]["SOPInstanceUID"] for f in found}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Our node holding the corpus and knowing Orthanc; Orthanc knowing our node."""
    base = tmp_path_factory.mktemp("orthanc-client")
    studies = write_corpus(base / "corpus")
    our_port = free_port()
    orthanc_port = free_port()
    config = node_config(base / "node", our_port)
    config = replace(config, nodes=(RemoteNode("orthanc", "ORTHANC", "127.0.0.1", orthanc_port),))
    with (
        OrthancProcess(
            base / "orthanc",
            dicom_port=orthanc_port,
            modalities={"tuipacs": ("TUI_PACS", "127.0.0.1", our_port)},
        ) as orthanc,
        running_node(config) as node,
    ):
        for study in studies:
            for path in study.files:
                node.ingestor.store_file(path)
        yield Setup(orthanc, node, studies)


def test_study_query_matches_what_we_hold(setup: Setup) -> None:
    """Study-level queries from Orthanc (all, by ID, by name wildcard, by date) match our index."""
    a, b = setup.studies
    every = setup.query("Study", {})
    assert {r["StudyInstanceUID"] for r in every} == {a.uid, b.uid}
    # Only the keys asked for come back: an empty PatientName asks for it.
    [row] = setup.query("Study", {"PatientID": "PID_A", "PatientName": "", "ModalitiesInStudy": ""})
    assert row["StudyInstanceUID"] == a.uid
    assert (row["PatientName"], row["ModalitiesInStudy"]) == ("Alpha^Anna", "CT")
    assert row.get("AccessionNumber", "ACC0") == "ACC0"  # Orthanc asks for it on its own
    [row] = setup.query("Study", {"PatientName": "beta*"})
    assert row["StudyInstanceUID"] == b.uid
    [row] = setup.query("Study", {"StudyDate": "20240101-"})
    assert row["StudyInstanceUID"] == a.uid


def test_series_and_instance_queries(setup: Setup) -> None:
    """Series and instance level queries under a study return exactly our series and instances."""
    a = setup.studies[0]
    series = setup.query("Series", {"StudyInstanceUID": a.uid})
    assert {r["SeriesInstanceUID"] for r in series} == {s.uid for s in a.series}
    first = a.series[0]
    instances = setup.query("Instance", {"StudyInstanceUID": a.uid, "SeriesInstanceUID": first.uid})
    assert {r["SOPInstanceUID"] for r in instances} == first.sop_uids


def test_patient_query(setup: Setup) -> None:
    """A patient-level query from Orthanc lists both patients."""
    rows = setup.query("Patient", {})
    assert sorted(r["PatientID"] for r in rows) == ["PID_A", "PID_B"]


def test_orthanc_retrieves_a_study_from_us(setup: Setup) -> None:
    """Orthanc's /queries/{id}/retrieve C-MOVEs a study from our node into itself, complete."""
    b = setup.studies[1]
    created: Any = setup.orthanc.post(
        "/modalities/tuipacs/query", {"Level": "Study", "Query": {"StudyInstanceUID": b.uid}}
    )
    setup.orthanc.post(
        f"/queries/{created['ID']}/retrieve", {"TargetAet": "ORTHANC", "Synchronous": True}
    )
    assert setup.orthanc_instances(b.uid) == b.sop_uids


def test_orthanc_retrieves_one_series_from_us(setup: Setup) -> None:
    """A series-level answer retrieved by Orthanc brings just that series."""
    a = setup.studies[0]
    wanted = a.series[1]
    created: Any = setup.orthanc.post(
        "/modalities/tuipacs/query",
        {"Level": "Series", "Query": {"StudyInstanceUID": a.uid, "SeriesInstanceUID": wanted.uid}},
    )
    setup.orthanc.post(
        f"/queries/{created['ID']}/answers/0/retrieve",
        {"TargetAet": "ORTHANC", "Synchronous": True},
    )
    assert setup.orthanc_instances(a.uid) == wanted.sop_uids


def test_node_is_still_consistent(setup: Setup, tmp_path: Path) -> None:
    """After serving Orthanc, our node holds exactly what it was given."""
    from tui_pacs.store.models import Instance

    held = {i.sop_instance_uid for i in Instance.select()}
    assert held == {u for s in setup.studies for u in s.sop_uids}
