"""Our Q/R SCU against DCMTK dcmqrscp: find at each level, retrieve by C-MOVE and C-GET, send."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.interop.qr_data import Study, finish, node_config, running_node, write_corpus
from tests.interop.synth import write_series
from tests.peers import DCMTK, dcmtk_env, free_port, require_dcmtk, run_dcmtk, wait_for_port
from tui_pacs.model import JobState, RemoteNode
from tui_pacs.services import jobs, qr
from tui_pacs.services.qr import FindQuery
from tui_pacs.store.models import Instance

pytestmark = pytest.mark.interop

AE_TITLE = "DCMQRSCP"


class Dcmqrscp:
    """DCMTK's dcmqrscp on loopback with a generated config; our AE in its host table."""

    def __init__(self, folder: Path, our_port: int) -> None:
        self.folder = folder
        self.port = free_port()
        self.our_port = our_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.node = RemoteNode("dcmqrscp", AE_TITLE, "127.0.0.1", self.port)

    def __enter__(self) -> Dcmqrscp:
        require_dcmtk()
        storage = self.folder / "db"
        storage.mkdir(parents=True, exist_ok=True)
        config = self.folder / "dcmqrscp.cfg"
        # No UserName/GroupName: run as whoever runs the tests (root would switch to them).
        config.write_text(
            f"NetworkTCPPort  = {self.port}\n"
            "MaxPDUSize      = 65536\n"
            "MaxAssociations = 16\n\n"
            "HostTable BEGIN\n"
            f"tuipacs = (TUI_PACS, 127.0.0.1, {self.our_port})\n"
            "HostTable END\n\n"
            "VendorTable BEGIN\nVendorTable END\n\n"
            "AETable BEGIN\n"
            f"{AE_TITLE}  {storage}  RW  (200, 1024mb)  ANY\n"
            "AETable END\n"
        )
        self._log = open(self.folder / "dcmqrscp.log", "wb")
        # The default fork-per-association mode: --single-process accepts one association only.
        self.proc = subprocess.Popen(
            [str(DCMTK / "dcmqrscp"), "-c", str(config), str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dcmtk_env(),
        )
        wait_for_port(self.port, 20, self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._log.close()

    def store(self, files: list[Path]) -> None:
        """Fill its database with DCMTK storescu."""
        r = run_dcmtk("storescu", "-aec", AE_TITLE, "127.0.0.1", str(self.port),
                      *map(str, files))  # fmt: skip
        assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dcmqrscp, list[Study]]]:
    """dcmqrscp holding the two-patient corpus."""
    base = tmp_path_factory.mktemp("dcmqrscp")
    studies = write_corpus(base / "corpus")
    with Dcmqrscp(base / "peer", free_port()) as scp:
        scp.store([p for s in studies for p in s.files])
        yield scp, studies


def _find(tmp_path: Path, scp: Dcmqrscp, **kw: str) -> list[dict[str, str]]:
    config = node_config(tmp_path, scp.our_port)
    return list(qr.find(config, scp.node, FindQuery(**kw)))


def test_find_each_level(tmp_path: Path, peer: tuple[Dcmqrscp, list[Study]]) -> None:
    """PATIENT, STUDY, SERIES and IMAGE levels return what dcmqrscp holds, in both roots."""
    scp, (a, b) = peer
    patients = _find(tmp_path, scp, level="PATIENT", root="patient")
    assert sorted(r["PatientID"] for r in patients) == ["PID_A", "PID_B"]
    studies = _find(tmp_path, scp)
    assert {r["StudyInstanceUID"] for r in studies} == {a.uid, b.uid}
    by_patient = _find(tmp_path, scp, level="STUDY", root="patient", patient_id="PID_B")
    assert [r["StudyInstanceUID"] for r in by_patient] == [b.uid]
    series = _find(tmp_path, scp, level="SERIES", study_instance_uid=a.uid)
    assert {r["SeriesInstanceUID"] for r in series} == {s.uid for s in a.series}
    images = _find(
        tmp_path, scp, level="IMAGE", study_instance_uid=a.uid,
        series_instance_uid=a.series[0].uid,
    )  # fmt: skip
    assert {r["SOPInstanceUID"] for r in images} == a.series[0].sop_uids


def test_find_study_matching(tmp_path: Path, peer: tuple[Dcmqrscp, list[Study]]) -> None:
    """Patient ID, name wildcard and date range matching at the study level."""
    scp, (a, b) = peer
    assert [r["StudyInstanceUID"] for r in _find(tmp_path, scp, patient_id="PID_A")] == [a.uid]
    assert [r["StudyInstanceUID"] for r in _find(tmp_path, scp, patient_name="Beta*")] == [b.uid]
    in_2024 = _find(tmp_path, scp, study_date="20240101-20241231")
    assert [r["StudyInstanceUID"] for r in in_2024] == [a.uid]


@pytest.mark.parametrize("method", ["move", "get"])
def test_retrieve_study(tmp_path: Path, peer: tuple[Dcmqrscp, list[Study]], method: str) -> None:
    """A retrieve job brings a whole study from dcmqrscp, by C-MOVE or by C-GET."""
    scp, (a, _b) = peer
    config = node_config(tmp_path, scp.our_port)
    with running_node(config):
        job = finish(config, jobs.queue_retrieve(config, scp.node, a.uid, method=method))
    assert job.state == JobState.COMPLETED, job.error
    assert (job.total, job.completed, job.failed) == (5, 5, 0)
    rows = {i.sop_instance_uid: i for i in Instance.select()}
    assert set(rows) == a.sop_uids
    for path in a.files:
        original = dcmread(path)
        archived = dcmread(config.storage_path / rows[str(original.SOPInstanceUID)].path)
        assert archived.PixelData == original.PixelData


def test_retrieve_one_series_by_get(tmp_path: Path, peer: tuple[Dcmqrscp, list[Study]]) -> None:
    """A series-level C-GET brings that series only."""
    scp, (a, _b) = peer
    config = node_config(tmp_path, scp.our_port)
    with running_node(config):
        job = finish(config, jobs.queue_retrieve(config, scp.node, a.uid, [a.series[0].uid], "get"))
    assert job.state == JobState.COMPLETED, job.error
    assert {i.sop_instance_uid for i in Instance.select()} == a.series[0].sop_uids


def test_send_files_to_dcmqrscp(tmp_path: Path, peer: tuple[Dcmqrscp, list[Study]]) -> None:
    """A send job of a folder C-STOREs every file; dcmqrscp then finds the new study."""
    scp, _studies = peer
    files = write_series(tmp_path / "new", 3, patient_id="PID_SENT")
    study_uid = str(dcmread(files[0]).StudyInstanceUID)
    config = node_config(tmp_path, free_port())
    with running_node(config):
        job = finish(config, jobs.queue_send(config, scp.node, paths=[tmp_path / "new"]))
    assert job.state == JobState.COMPLETED, job.error
    assert (job.total, job.completed) == (3, 3)
    [row] = _find(tmp_path, scp, study_instance_uid=study_uid)
    assert row["PatientID"] == "PID_SENT"
