"""End to end: the tech desk of the real `tui-pacs` console in tmux follows an order from the
worklist (findscu -W) through its images (storescu) to MPPS COMPLETED (a pynetdicom SCU)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep  # type: ignore[attr-defined]

from tests.peers import (
    DCMTK,
    IN_CI,
    dcmtk_env,
    free_port,
    run_dcmtk,
    wait_for_port,
    write_node_config,
)
from tests.ui.conftest import TODAY
from tests.ui.test_console_tmux import ROOT, Tmux
from tui_pacs.services.demo import demo_datasets

pytestmark = [pytest.mark.interop, pytest.mark.slow]

AE_TITLE = "DESK_PACS"
STUDY_UID = str(generate_uid())


def _write_images(folder: Path, count: int = 3) -> list[Path]:
    """``count`` images of one series, for the order's patient and Study Instance UID."""
    folder.mkdir(parents=True)
    by_series: dict[str, list[Dataset]] = {}
    for ds in demo_datasets(TODAY, seed=7):
        by_series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
        if len(by_series[str(ds.SeriesInstanceUID)]) == count:
            break
    chosen = next(group for group in by_series.values() if len(group) == count)
    paths: list[Path] = []
    for ds in chosen:
        ds.PatientName = "DESK^Tmux"
        ds.PatientID = "DESK0001"
        ds.AccessionNumber = "DESKACC1"
        ds.StudyInstanceUID = STUDY_UID
        path = folder / f"{len(paths):03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _mpps(port: int, files: list[Path]) -> None:
    """N-CREATE an MPPS IN PROGRESS for the order, then N-SET it COMPLETED with the images."""
    first = dcmread(files[0], stop_before_pixels=True)
    create = Dataset()
    create.PatientName = "DESK^Tmux"
    create.PatientID = "DESK0001"
    step = Dataset()
    step.StudyInstanceUID = STUDY_UID
    step.AccessionNumber = "DESKACC1"
    step.ScheduledProcedureStepID = ""
    step.RequestedProcedureID = ""
    create.ScheduledStepAttributesSequence = [step]
    create.PerformedProcedureStepID = "PPS-TMUX"
    create.PerformedStationAETitle = "MODALITY"
    create.PerformedProcedureStepStartDate = date.today().strftime("%Y%m%d")
    create.PerformedProcedureStepStartTime = "090000"
    create.PerformedProcedureStepStatus = "IN PROGRESS"
    create.Modality = str(first.Modality)
    create.PerformedSeriesSequence = []
    done = Dataset()
    done.PerformedProcedureStepStatus = "COMPLETED"
    done.PerformedProcedureStepEndDate = create.PerformedProcedureStepStartDate
    done.PerformedProcedureStepEndTime = "091500"
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.PerformingPhysicianName = ""
    series.ProtocolName = "TMUX"
    series.OperatorsName = ""
    series.SeriesDescription = ""
    series.RetrieveAETitle = ""
    refs = []
    for path in files:
        ds = dcmread(path, stop_before_pixels=True)
        ref = Dataset()
        ref.ReferencedSOPClassUID = ds.SOPClassUID
        ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        refs.append(ref)
    series.ReferencedImageSequence = refs
    series.ReferencedNonImageCompositeSOPInstanceSequence = []
    done.PerformedSeriesSequence = [series]
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = ae.associate("127.0.0.1", port, ae_title=AE_TITLE)
    assert assoc.is_established
    try:
        uid = generate_uid()
        status, _attrs = assoc.send_n_create(create, ModalityPerformedProcedureStep, uid)
        assert status is not None and status.Status == 0x0000, status
        status, _attrs = assoc.send_n_set(done, ModalityPerformedProcedureStep, uid)
        assert status is not None and status.Status == 0x0000, status
    finally:
        assoc.release()


def test_desk_follows_an_order_to_completion(tmp_path: Path) -> None:
    """tui-pacs in tmux: an order added by the CLI shows on the desk and in findscu -W; its
    images (storescu) and its MPPS COMPLETED (pynetdicom) turn it complete with 1/3 images."""
    if shutil.which("tmux") is None:
        if IN_CI:
            pytest.fail("tmux is missing")
        pytest.skip("tmux not installed")
    port = free_port()
    config = write_node_config(tmp_path / "store", port, ae_title=AE_TITLE)
    env = {"TUI_PACS_CONFIG": str(config), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    today = date.today().strftime("%Y%m%d")
    added = subprocess.run(
        [sys.executable, "-m", "tui_pacs", "worklist", "add", "--patient-name", "DESK^Tmux",
         "--patient-id", "DESK0001", "--accession", "DESKACC1", "--modality", "CT",
         "--date", today, "--time", "0900", "--station", "MODALITY", "--procedure", "CT tmux",
         "--study-uid", STUDY_UID],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    files = _write_images(tmp_path / "send")
    tmux = Tmux(f"tui-pacs-desk-{port}")
    tmux.start(
        f"cd {ROOT} && TERM=xterm-256color TUI_PACS_CONFIG={config} {sys.executable} -m tui_pacs"
    )
    try:
        tmux.wait_for(lambda s: f"{AE_TITLE} :{port}" in s, "the node in the status bar")
        wait_for_port(port)
        tmux.keys("5")
        screen = tmux.wait_for(lambda s: "DESK Tmux" in s, "the order on the desk")
        assert "scheduled" in screen and "0/0" in screen
        # The modality pulls its worklist.
        out = tmp_path / "mwl"
        out.mkdir()
        found = subprocess.run(
            [str(DCMTK / "findscu"), "-W", "-aet", "MODALITY", "-aec", AE_TITLE,
             "-k", "PatientName", "-k", "AccessionNumber", "-k", "StudyInstanceUID",
             "-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=MODALITY",
             "-k", f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={today}",
             "-k", "ScheduledProcedureStepSequence[0].Modality=CT",
             "-X", "-od", str(out), "127.0.0.1", str(port)],
            capture_output=True, timeout=60, env=dcmtk_env(),
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        (rsp,) = [dcmread(f, force=True) for f in sorted(out.glob("rsp*.dcm"))]
        assert (str(rsp.PatientName), rsp.AccessionNumber) == ("DESK^Tmux", "DESKACC1")
        assert rsp.StudyInstanceUID == STUDY_UID
        # The modality sends the images: the desk counts them live.
        sent = run_dcmtk("storescu", "-aet", "MODALITY", "-aec", AE_TITLE, "127.0.0.1",
                         str(port), *map(str, files))  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        tmux.wait_for(lambda s: "1/3" in s, "the images counted on the desk")
        # MPPS in progress then completed: the order turns complete with its images.
        _mpps(port, files)
        screen = tmux.wait_for(
            lambda s: "completed" in s and "Worklist · 1 orders · 1 completed" in s,
            "the order completed",
        )
        row = next(line for line in screen.splitlines() if "DESK Tmux" in line)
        assert "completed" in row and "1/3" in row and "NOIMG" not in row
        assert "flagged" not in screen
        tmux.keys("q")
        tmux.wait_for(lambda s: "Quit tui-pacs?" in s, "the quit confirmation")
        tmux.keys("y")
        tmux.wait_for(lambda s: tmux.dead(), "the console to exit")
    finally:
        tmux.kill()
