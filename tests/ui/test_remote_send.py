"""Pilot tests of sending from the archive screen: pick a node, a send job, the peer has it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.peers import NodeProcess
from tests.ui.remote_peer import PEER_AE, job_end, settle
from tui_pacs.model import JobState, RemoteNode
from tui_pacs.services import qr
from tui_pacs.ui.dialogs.node_picker import NodePickerDialog, SendQueued
from tui_pacs.ui.screens.archive import ArchiveScreen
from tui_pacs.ui.widgets.series_table import SeriesTable
from tui_pacs.ui.widgets.study_table import StudyTable

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


async def test_send_study_and_series_to_a_node(
    demo_config, console_factory, tmp_path: Path
) -> None:
    """S on a study, then on a series, asks for a node and queues send jobs the peer receives."""
    with NodeProcess(tmp_path / "peer", ae_title=PEER_AE) as process:
        target = RemoteNode("peer", PEER_AE, "127.0.0.1", process.port)
        other = RemoteNode("elsewhere", "ELSEWHERE", "127.0.0.1", 1)
        config = replace(demo_config, nodes=(other, target))
        async with console_factory(config, start_node=True) as console:
            console.app.animation_level = "none"
            archive = console.app.screen
            assert isinstance(archive, ArchiveScreen)
            study = archive.query_one(StudyTable).selected_uid
            assert study is not None
            await console.pilot.press("S")
            await settle(console)
            picker = console.app.screen
            assert isinstance(picker, NodePickerDialog)
            assert "Send the study of SMITH, John Q" in picker.title_text
            listed = console.posted(NodePickerDialog.NodesListed)[-1].nodes
            assert [n.name for n in listed] == ["elsewhere", "peer"]
            await console.pilot.press("escape")  # changed my mind: nothing is queued
            await settle(console)
            assert console.app.screen is archive and not console.posted(SendQueued)
            await console.pilot.press("S")
            await settle(console)
            await console.pilot.press("down", "enter")
            await settle(console)
            (queued,) = console.posted(SendQueued)
            job = queued.job
            assert job.kind == "send" and job.node_name == "peer"
            assert job.params["study_uids"] == [study] and job.params["series_uids"] == []
            final = await job_end(config, job)
            assert final.state == JobState.COMPLETED, final.error
            assert final.completed == final.total == 14  # SMITH's MR brain: 5 + 5 + 4 images
            found = list(qr.find_studies(config, target, qr.FindQuery(patient_id="DEMO0002")))
            assert [s.study_instance_uid for s in found] == [study]

            # A series, from the series list.
            await console.pilot.press("tab")  # focus the series of the study
            series_table = archive.query_one(SeriesTable)
            assert series_table.has_focus
            await console.pilot.press("down")
            await settle(console)
            series = archive.series_uid
            await console.pilot.press("S")
            await settle(console)
            picker = console.app.screen
            assert isinstance(picker, NodePickerDialog) and "series Ax T2" in picker.title_text
            await console.pilot.press("down", "enter")
            await settle(console)
            job = console.posted(SendQueued)[-1].job
            assert job.params["series_uids"] == [series] and job.params["study_uids"] == []
            final = await job_end(config, job)
            assert final.state == JobState.COMPLETED and final.completed == 5
