"""The tech desk end to end against a real node process: an order added with ``tui-pacs worklist
add`` is found by DCMTK ``findscu -W``; images made from the worklist item are sent with DCMTK
``storescu``; the node matches them to the order and, with no MPPS, completes it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.peers import DCMTK, NodeProcess, dcmtk_env, require_dcmtk, run_dcmtk
from tests.store.synthetic import make_dataset, new_uid, write
from tui_pacs.config import load_config
from tui_pacs.model import OrderStatus
from tui_pacs.services.worklist import WorklistService, today

pytestmark = [pytest.mark.interop, pytest.mark.slow]


def _cli(node: NodeProcess, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "tui_pacs", "--config", str(node.config_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout


def test_order_query_images_complete(tmp_path: Path) -> None:
    """add -> findscu -W -> storescu -> the order is in progress, then completed, with its
    images counted and no flag."""
    require_dcmtk()
    node = NodeProcess(tmp_path / "node", extra="[worklist]\ncomplete_after = 1\n")
    with node:
        added = _cli(
            node,
            "worklist",
            "add",
            "--patient-name",
            "FLOW^TESSA",
            "--patient-id",
            "F1",
            "--modality",
            "CT",
            "--station",
            "STORESCU",
            "--date",
            today(),
            "--time",
            "0800",
            "--accession",
            "FL1",
        )
        assert added.startswith("added order 1")
        out = tmp_path / "rsp"
        out.mkdir()
        found = subprocess.run(
            [
                str(DCMTK / "findscu"),
                "-W",
                "-aet",
                "STORESCU",
                "-aec",
                node.ae_title,
                "-k",
                "PatientName",
                "-k",
                "PatientID",
                "-k",
                "AccessionNumber",
                "-k",
                "StudyInstanceUID",
                "-k",
                "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=STORESCU",
                "-k",
                f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={today()}",
                "-X",
                "-od",
                str(out),
                "127.0.0.1",
                str(node.port),
            ],
            capture_output=True,
            timeout=60,
            env=dcmtk_env(),
        )
        assert found.returncode == 0, found.stderr
        (item,) = [dcmread(p, force=True) for p in out.glob("rsp*.dcm")]
        assert (item.PatientID, item.AccessionNumber) == ("F1", "FL1")
        series = new_uid()
        files = []
        for n in range(3):
            ds = make_dataset(
                patient_id=item.PatientID,
                patient_name=str(item.PatientName),
                study_uid=item.StudyInstanceUID,
                series_uid=series,
                instance_number=n + 1,
            )
            ds.AccessionNumber = item.AccessionNumber
            files.append(str(write(ds, tmp_path / "images" / f"{n}.dcm")))
        sent = run_dcmtk(
            "storescu",
            "-aet",
            "STORESCU",
            "-aec",
            node.ae_title,
            "127.0.0.1",
            str(node.port),
            *files,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        service = WorklistService(load_config(node.config_path))
        deadline = time.monotonic() + 30
        seen: list[OrderStatus] = []
        while time.monotonic() < deadline:
            # The node settles orders after each heartbeat (every 5 s): poll its result.
            status = service.get(1).status
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == OrderStatus.COMPLETED:
                break
            time.sleep(0.2)
        assert seen[-1] == OrderStatus.COMPLETED, (seen, node.log())
        progress = service.progress([service.get(1)])[0]
        assert (progress.series_received, progress.instances_received) == (1, 3)
        assert progress.matched_by == "study-instance-uid" and progress.flags == ()
        listed = _cli(node, "worklist", "list")
        assert "completed" in listed and "1/3" in listed
        service.db.close()
