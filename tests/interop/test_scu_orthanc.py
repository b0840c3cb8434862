"""Our Q/R SCU against a real Orthanc: find at each level, retrieve by C-MOVE and C-GET, send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom import dcmread

from tests.interop.qr_data import Study, finish, node_config, running_node, write_corpus
from tests.peers import OrthancProcess, free_port, run_dcmtk
from tui_pacs.cli import main
from tui_pacs.model import JobState, RemoteNode
from tui_pacs.net import status as st
from tui_pacs.services import jobs, qr
from tui_pacs.services.qr import FindQuery
from tui_pacs.store.models import Instance

pytestmark = pytest.mark.interop


class Peer:
    """Orthanc holding the corpus, and the port our node must listen on to receive C-MOVEs."""

    def __init__(self, orthanc: OrthancProcess, studies: list[Study], our_port: int) -> None:
        self.orthanc = orthanc
        self.studies = studies
        self.our_port = our_port
        self.node = RemoteNode("orthanc", orthanc.ae_title, "127.0.0.1", orthanc.dicom_port)

    @property
    def spec(self) -> str:
        return f"{self.orthanc.ae_title}@127.0.0.1:{self.orthanc.dicom_port}"


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """One Orthanc for the module, our AE TUI_PACS registered in its DicomModalities."""
    base = tmp_path_factory.mktemp("orthanc-scu")
    studies = write_corpus(base / "corpus")
    our_port = free_port()
    with OrthancProcess(
        base / "orthanc", modalities={"tuipacs": ("TUI_PACS", "127.0.0.1", our_port)}
    ) as orthanc:
        files = [str(p) for s in studies for p in s.files]
        r = run_dcmtk("storescu", "-aec", orthanc.ae_title, "127.0.0.1", str(orthanc.dicom_port),
                      *files)  # fmt: skip
        assert r.returncode == 0, r.stderr
        yield Peer(orthanc, studies, our_port)


def _find(tmp_path: Path, peer: Peer, **kw: str) -> list[dict[str, str]]:
    config = node_config(tmp_path, peer.our_port)
    return list(qr.find(config, peer.node, FindQuery(**kw)))


def test_find_patient_level(tmp_path: Path, peer: Peer) -> None:
    """Patient root, PATIENT level: both patients, with the keys asked for."""
    rows = _find(tmp_path, peer, level="PATIENT", root="patient")
    assert sorted(r["PatientID"] for r in rows) == ["PID_A", "PID_B"]
    by_id = {r["PatientID"]: r for r in rows}
    assert by_id["PID_A"]["PatientName"] == "Alpha^Anna"
    assert by_id["PID_A"]["NumberOfPatientRelatedStudies"] == "1"


def test_find_study_level_matching(tmp_path: Path, peer: Peer) -> None:
    """Study root, STUDY level: exact ID, name wildcard, date range and modality narrow it down."""
    a, b = peer.studies
    assert {r["StudyInstanceUID"] for r in _find(tmp_path, peer)} == {a.uid, b.uid}
    assert [r["StudyInstanceUID"] for r in _find(tmp_path, peer, patient_id="PID_B")] == [b.uid]
    assert [r["StudyInstanceUID"] for r in _find(tmp_path, peer, patient_name="Alpha*")] == [a.uid]
    by_date = _find(tmp_path, peer, study_date="20240101-20240229")
    assert [r["StudyInstanceUID"] for r in by_date] == [a.uid]
    assert [r["StudyInstanceUID"] for r in _find(tmp_path, peer, study_date="-20231231")] == [b.uid]
    assert [r["StudyInstanceUID"] for r in _find(tmp_path, peer, modality="MR")] == [b.uid]
    [row] = _find(tmp_path, peer, study_instance_uid=a.uid)
    assert row["NumberOfStudyRelatedInstances"] == "5"
    assert row["ModalitiesInStudy"] == "CT"


def test_find_patient_root_study_level(tmp_path: Path, peer: Peer) -> None:
    """Patient root, STUDY level, under one Patient ID."""
    rows = _find(tmp_path, peer, level="STUDY", root="patient", patient_id="PID_A")
    assert [r["StudyInstanceUID"] for r in rows] == [peer.studies[0].uid]


def test_find_series_and_image_levels(tmp_path: Path, peer: Peer) -> None:
    """SERIES level under a study; IMAGE level under a series, in both roots."""
    a = peer.studies[0]
    series = _find(tmp_path, peer, level="SERIES", study_instance_uid=a.uid)
    assert {r["SeriesInstanceUID"] for r in series} == {s.uid for s in a.series}
    counts = {r["SeriesInstanceUID"]: r["NumberOfSeriesRelatedInstances"] for r in series}
    assert counts == {a.series[0].uid: "3", a.series[1].uid: "2"}
    first = a.series[0]
    images = _find(
        tmp_path, peer, level="IMAGE", study_instance_uid=a.uid, series_instance_uid=first.uid
    )
    assert {r["SOPInstanceUID"] for r in images} == first.sop_uids
    images = _find(
        tmp_path, peer, level="IMAGE", root="patient", patient_id="PID_A",
        study_instance_uid=a.uid, series_instance_uid=first.uid,
    )  # fmt: skip
    assert {r["SOPInstanceUID"] for r in images} == first.sop_uids


def test_find_cli_json_and_table(tmp_path: Path, peer: Peer) -> None:
    """``tui-pacs find NODE --json`` prints the matches; the table has one line per match."""
    config = tmp_path / "config.toml"
    config.write_text(f'[node]\nae_title = "TUI_PACS"\n[storage]\npath = "{tmp_path}/a"\n')
    runner = CliRunner()
    r = runner.invoke(main, ["--config", str(config), "find", peer.spec, "--modality", "CT",
                             "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["PatientName"] for row in rows] == ["Alpha^Anna"]
    r = runner.invoke(main, ["--config", str(config), "find", peer.spec, "--level", "series",
                             "--study", peer.studies[1].uid])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stdout.count(peer.studies[1].series[0].uid) == 1
    r = runner.invoke(main, ["--config", str(config), "find", peer.spec, "--level", "image"])
    assert r.exit_code == 2 and "needs --study" in r.output


def _assert_archived(studies_files: list[Path], archive: Path) -> None:
    """Every file arrived once, indexed, with the same data set content."""
    rows = {i.sop_instance_uid: i for i in Instance.select()}
    sent = {str(dcmread(p).SOPInstanceUID): p for p in studies_files}
    assert set(rows) == set(sent)
    for uid, path in sent.items():
        original = dcmread(path)
        archived = dcmread(archive / rows[uid].path)
        assert archived.PixelData == original.PixelData
        assert archived.PatientName == original.PatientName


@pytest.mark.parametrize("method", ["move", "get"])
def test_retrieve_study(tmp_path: Path, peer: Peer, db_url: str, method: str) -> None:
    """A retrieve job brings the whole study into our node, by C-MOVE or by C-GET."""
    study = peer.studies[0]
    config = node_config(tmp_path, peer.our_port, db_url)
    with running_node(config):
        job = finish(config, jobs.queue_retrieve(config, peer.node, study.uid, method=method))
    assert job.state == JobState.COMPLETED, job.error
    assert (job.total, job.completed, job.failed, job.remaining) == (5, 5, 0, 0)
    assert job.last_status == st.SUCCESS
    _assert_archived(study.files, config.storage_path)


def test_retrieve_series_by_get_and_again_as_duplicates(tmp_path: Path, peer: Peer) -> None:
    """A series-level C-GET brings one series; running it again stores nothing new."""
    study = peer.studies[0]
    series = study.series[1]
    config = node_config(tmp_path, peer.our_port)
    with running_node(config):
        job = finish(config, jobs.queue_retrieve(config, peer.node, study.uid, [series.uid], "get"))
        assert job.state == JobState.COMPLETED, job.error
        assert job.completed == 2
        again = finish(config, jobs.queue_retrieve(config, peer.node, study.uid, [series.uid]))
    assert again.state == JobState.COMPLETED and again.completed == 2
    _assert_archived(series.files, config.storage_path)


def test_retrieve_cli_runs_a_node_in_process(tmp_path: Path, peer: Peer) -> None:
    """With no node alive, ``tui-pacs retrieve`` runs one for the job; --detach refuses."""
    study = peer.studies[1]
    config = tmp_path / "config.toml"
    config.write_text(
        f'[node]\nae_title = "TUI_PACS"\nbind_address = "127.0.0.1"\nport = {peer.our_port}\n'
        f'[storage]\npath = "{tmp_path / "archive"}"\n'
        f'database_url = "sqlite:///{tmp_path / "index.sqlite3"}"\n'
        f'[logging]\nfile = "{tmp_path / "log"}"\n'
    )
    runner = CliRunner()
    args = ["--config", str(config), "retrieve", peer.spec, "--study", study.uid]
    r = runner.invoke(main, [*args, "--detach"])
    assert r.exit_code == 1 and "tui-pacs serve" in r.output
    r = runner.invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "completed" in r.stdout
    _assert_archived(study.files, tmp_path / "archive")


def test_move_to_a_destination_the_peer_does_not_know(tmp_path: Path, peer: Peer) -> None:
    """Orthanc refuses a C-MOVE to an AE it does not know: the job fails and says why."""
    config = node_config(tmp_path, free_port(), ae_title="STRANGER")
    with running_node(config):
        job = finish(config, jobs.queue_retrieve(config, peer.node, peer.studies[0].uid))
    assert job.state == JobState.FAILED
    assert job.last_status is not None and job.last_status != st.SUCCESS
    assert "STRANGER" in job.error, job.error


def test_retrieve_of_an_unknown_study_fails(tmp_path: Path, peer: Peer) -> None:
    """Retrieving a study the peer does not hold ends failed, not completed with nothing."""
    config = node_config(tmp_path, peer.our_port)
    with running_node(config):
        job = finish(config, jobs.queue_retrieve(config, peer.node, "1.2.3.4.5.6.7.8.9"))
    assert job.state == JobState.FAILED, job


def test_send_archived_study_to_orthanc(tmp_path: Path, peer: Peer, db_url: str) -> None:
    """A send job C-STOREs an archived study; Orthanc then holds every instance of it."""
    from tests.interop.synth import write_series

    files = write_series(tmp_path / "new", 4, patient_id="PID_SEND")
    study_uid = str(dcmread(files[0]).StudyInstanceUID)
    config = node_config(tmp_path, free_port(), db_url)
    with running_node(config) as node:
        for path in files:
            node.ingestor.store_file(path)
        job = finish(config, jobs.queue_send(config, peer.node, study_instance_uids=[study_uid]))
    assert job.state == JobState.COMPLETED, job.error
    assert (job.total, job.completed, job.failed) == (4, 4, 0)
    found = peer.orthanc.post(
        "/tools/find", {"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}}
    )
    assert len(found) == 4  # type: ignore[arg-type]
