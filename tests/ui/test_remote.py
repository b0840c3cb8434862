"""Pilot tests of the remote screen against a real peer: query, series, priors, retrieve, errors."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import Input, Select

from tests.ui.remote_peer import (
    PEER_AE,
    console_config,
    job_end,
    peer_fixture,  # noqa: F401
    settle,
)
from tui_pacs.model import JobState, RemoteNode
from tui_pacs.ui.dialogs.error import ErrorDialog
from tui_pacs.ui.screens.archive import ArchiveScreen
from tui_pacs.ui.screens.help import HelpScreen
from tui_pacs.ui.screens.nodes import NodesScreen
from tui_pacs.ui.screens.remote import RemoteScreen
from tui_pacs.ui.screens.transfers import TransfersScreen
from tui_pacs.ui.widgets.job_table import JobTable
from tui_pacs.ui.widgets.remote_tables import RemoteSeriesTable, RemoteStudyTable
from tui_pacs.ui.widgets.study_table import StudyTable

pytestmark = pytest.mark.asyncio


def patients(table: RemoteStudyTable) -> list[str]:
    """Patient column of every row, as shown."""
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


def title(screen: RemoteScreen) -> str:
    return str(screen.query_one("#remote-studies-title").render())


async def open_remote(console) -> RemoteScreen:  # type: ignore[no-untyped-def]
    """Switch to the remote screen and wait for the node list."""
    console.app.animation_level = "none"  # no waiting for dialog and scroll animations
    await console.pilot.press("2")
    await settle(console)
    screen = console.app.screen
    assert isinstance(screen, RemoteScreen)
    return screen


async def test_query_by_name_lists_remote_studies(demo_config, console_factory, peer) -> None:
    """The first node is chosen; a name typed in the filter and Enter runs the C-FIND."""
    config = console_config(demo_config, peer)
    async with console_factory(config) as console:
        screen = await open_remote(console)
        assert screen.query_one("#remote-node", Select).value == "remote"
        assert PEER_AE in str(screen.query_one("#node-info").render())
        await console.pilot.press("slash")
        await console.type("mü")
        await console.pilot.press("enter")
        await settle(console)
        done = console.posted(RemoteScreen.QueryDone)[-1]
        assert done.query.patient_name == "mü*" and done.node.name == "remote"
        table = screen.query_one(RemoteStudyTable)
        assert patients(table) == ["MÜLLER, Jürgen"] * 3
        assert table.has_focus
        assert "Studies on remote · 3 found" in title(screen)
        # The peer's studies, not ours: the demo of another seed has other UIDs.
        local = {s.study_instance_uid for s in config_studies(console)}
        assert not local & set(table.studies)


def config_studies(console):  # type: ignore[no-untyped-def]
    """Every study of the console's own archive."""
    from tui_pacs.model import StudyFilter

    browser = console.app.context.browser
    return browser.study_page(StudyFilter(), limit=100).studies


async def test_date_preset_and_modality_narrow_the_query(
    demo_config, console_factory, peer
) -> None:
    """The date preset and modality of the filter bar become StudyDate and ModalitiesInStudy."""
    async with console_factory(console_config(demo_config, peer)) as console:
        screen = await open_remote(console)
        screen.query_one("#filter-date", Select).value = "today"
        screen.query_one("#filter-modality", Select).value = "MR"
        await settle(console)
        assert not console.posted(RemoteScreen.QueryDone)  # selects do not query by themselves
        await console.pilot.press("f")
        await settle(console)
        done = console.posted(RemoteScreen.QueryDone)[-1]
        assert done.query.study_date == "20261120" and done.query.modality == "MR"
        table = screen.query_one(RemoteStudyTable)
        assert table.row_count == 1
        study = table.current
        assert study is not None and study.modalities_in_study == ("MR",)
        assert study.study_date == "20261120"


async def test_series_and_priors(demo_config, console_factory, peer) -> None:
    """Enter lists a study's series; p asks the node for every study of that patient."""
    async with console_factory(console_config(demo_config, peer)) as console:
        screen = await open_remote(console)
        await console.pilot.press("f")
        await settle(console)
        table = screen.query_one(RemoteStudyTable)
        assert table.row_count == 20
        await console.pilot.press("down")  # MÜLLER's CT (the peer's demo, seed 2)
        study = table.current
        assert study is not None
        await console.pilot.press("enter")
        await settle(console)
        shown = console.posted(RemoteScreen.SeriesShown)[-1]
        assert shown.study_instance_uid == study.study_instance_uid
        series = screen.query_one(RemoteSeriesTable)
        assert series.has_focus
        assert [str(series.get_row_at(i)[3]) for i in range(series.row_count)] == [
            "Scout",
            "Axial 5mm",
            "Lung 1mm",
        ]
        await console.pilot.press("p")
        await settle(console)
        done = console.posted(RemoteScreen.QueryDone)[-1]
        assert done.priors_of == study and done.query.patient_id == study.patient_id
        assert {s.patient_id for s in done.studies} == {study.patient_id}
        assert len(done.studies) == 3
        assert table.current == study  # the cursor stays on the study the priors are of
        assert screen.query_one("#filter-id", Input).value == study.patient_id
        assert "Priors of MÜLLER, Jürgen" in title(screen)
        assert series.row_count == 0  # a new result list: no series listed yet


async def test_retrieve_study_by_cget(demo_config, console_factory, peer) -> None:
    """r queues a retrieve job; the console's node runs it (C-GET); the study arrives locally."""
    config = console_config(demo_config, peer)
    async with console_factory(config, start_node=True) as console:
        screen = await open_remote(console)
        screen.query_one("#filter-name", Input).value = "okonkwo"
        await console.pilot.press("f")
        await settle(console)
        study = screen.query_one(RemoteStudyTable).current
        assert study is not None and study.patient_id == "DEMO0005"
        await console.pilot.press("r")
        await settle(console)
        (job,) = console.posted(RemoteScreen.RetrieveQueued)[-1].jobs
        assert job.params["study_uid"] == study.study_instance_uid
        assert job.params["method"] == "get"
        final = await job_end(config, job)
        assert final.state == JobState.COMPLETED, final.error
        assert final.completed == final.total == study.number_of_study_related_instances
        console.app.poll_changes()
        await settle(console)
        await console.pilot.press("3")
        await settle(console)
        transfers = console.app.screen
        assert isinstance(transfers, TransfersScreen)
        jobs = transfers.query_one(JobTable)
        row = [str(cell) for cell in jobs.get_row(str(job.id))]
        assert row[1] == "completed" and "100%" in row[2]
        assert row[3].strip() == f"{final.total}/{final.total}"
        await console.pilot.press("1")
        await settle(console)
        archive = console.app.screen
        assert isinstance(archive, ArchiveScreen)
        archive.action_reload()
        await settle(console)
        assert study.study_instance_uid in [
            str(k.value) for k in archive.query_one(StudyTable).rows
        ]


async def test_retrieve_marked_series_by_cmove(demo_config, console_factory, peer) -> None:
    """Space marks two series; r retrieves them in one C-MOVE job to the console's node."""
    config = console_config(demo_config, peer, peer.node(method="move"))
    async with console_factory(config, start_node=True) as console:
        screen = await open_remote(console)
        screen.query_one("#filter-id", Input).value = "DEMO0003"
        await console.pilot.press("f")
        await settle(console)
        await console.pilot.press("enter")
        await settle(console)
        series = screen.query_one(RemoteSeriesTable)
        assert series.has_focus and series.row_count >= 2
        await console.pilot.press("space", "space")
        assert len(series.marked) == 2
        assert "2 marked" in str(screen.query_one("#remote-series-title").render())
        wanted = series.chosen()
        await console.pilot.press("r")
        await settle(console)
        (job,) = console.posted(RemoteScreen.RetrieveQueued)[-1].jobs
        assert job.params["series_uids"] == wanted and job.params["method"] == "move"
        assert not series.marked  # marks are cleared once queued
        final = await job_end(config, job)
        assert final.state == JobState.COMPLETED, final.error
        expected = sum(series.series[uid].number_of_series_related_instances for uid in wanted)
        assert final.completed == expected
        local = console.app.context.browser.series(job.params["study_uid"])
        assert sorted(s.series_instance_uid for s in local) == sorted(wanted)


async def test_refused_query_shows_the_error_dialog(demo_config, console_factory, peer) -> None:
    """A C-FIND the peer refuses (0x0124) ends in the error dialog with the DICOM status."""
    config = replace(console_config(demo_config, peer), ae_title="LIMITED")
    async with console_factory(config) as console:
        screen = await open_remote(console)
        await console.pilot.press("f")
        await settle(console)
        dialog = console.app.screen
        assert isinstance(dialog, ErrorDialog)
        assert dialog.error.title == "Query failed"
        assert str(dialog.query_one("#error-status").render()) == "DICOM status 0x0124"
        await console.pilot.press("escape")
        assert "failed" in title(screen)


@pytest.mark.slow
async def test_unreachable_node_and_no_node(demo_config, console_factory) -> None:
    """A node nobody listens on fails with the error dialog; with no node the screen says so."""
    closed = RemoteNode("nowhere", "NOBODY", "127.0.0.1", 1)
    async with console_factory(replace(demo_config, nodes=(closed,))) as console:
        await open_remote(console)
        await console.pilot.press("f")
        await settle(console)
        dialog = console.app.screen
        assert isinstance(dialog, ErrorDialog)
        assert "could not be established" in dialog.error.message
    async with console_factory(demo_config) as console:
        screen = await open_remote(console)
        assert "add one on the Nodes screen" in str(screen.query_one("#node-info").render())
        await console.pilot.press("f")
        await settle(console)
        assert not console.posted(RemoteScreen.QueryDone)


@pytest.mark.slow
async def test_help_and_palette_list_every_action(demo_config, console_factory) -> None:
    """Each of the remote, transfers and nodes screens has its keys in the footer, the help
    screen and the command palette."""
    async with console_factory(demo_config) as console:
        console.app.animation_level = "none"
        for key, screen_type in (("2", RemoteScreen), ("3", TransfersScreen), ("4", NodesScreen)):
            await console.pilot.press(key)
            await settle(console)
            screen = console.app.screen
            assert isinstance(screen, screen_type)
            wanted = {b.description for b in screen_type.BINDINGS}
            palette = {c.title for c in console.app.get_system_commands(screen)}
            assert wanted <= palette
            shown = {b.description for b in screen_type.BINDINGS if b.show}
            footer = {
                binding.description
                for (_node, binding, _enabled, _tooltip) in screen.active_bindings.values()
            }
            assert shown <= footer
            await console.pilot.press("question_mark")
            help_screen = console.app.screen
            assert isinstance(help_screen, HelpScreen)
            listed = {description for _keys, description, _where in help_screen.rows}
            assert wanted <= listed
            await console.pilot.press("escape")
