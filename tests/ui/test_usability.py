"""Pilot tests of small things a new user tripped over: keys, focus, wording, clipped cells."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from textual.widgets import Select

from tests.ui.remote_peer import settle
from tui_pacs.model import JobInfo, JobState, RemoteNode
from tui_pacs.net import status as st
from tui_pacs.services import jobs as job_service
from tui_pacs.store import jobs as store_jobs
from tui_pacs.store.db import use_database
from tui_pacs.ui.dialogs.confirm import ConfirmDialog
from tui_pacs.ui.dialogs.error import ErrorDialog
from tui_pacs.ui.dialogs.node_picker import SendQueued
from tui_pacs.ui.screens.help import HelpScreen
from tui_pacs.ui.screens.remote import RemoteScreen, retrieve_label
from tui_pacs.ui.screens.transfers import TransfersScreen
from tui_pacs.ui.widgets.job_table import COLUMNS, JobTable, state_text
from tui_pacs.ui.widgets.remote_tables import RemoteStudyTable
from tui_pacs.ui.widgets.row_table import RowTable
from tui_pacs.ui.widgets.study_table import StudyTable

NODE = RemoteNode("pacs", "PACS", "127.0.0.1", 1, retrieve_method="get")


def ended_job(config, state: JobState, **final) -> JobInfo:  # type: ignore[no-untyped-def]
    """A send job that ran (by a node that is not running) and ended in ``state``."""
    job = job_service.queue_retrieve(config, NODE, "1.2.3.4")
    assert store_jobs.claim(job.id, "node-a")
    assert store_jobs.finish(job.id, "node-a", state, **final)
    return job_service.get_job(config, job.id)


async def open_screen(console, key: str, kind: type):  # type: ignore[no-untyped-def]
    """Press ``key`` and return the screen it shows (of type ``kind``)."""
    console.app.animation_level = "none"
    await console.pilot.press(key)
    await settle(console)
    screen = console.app.screen
    assert isinstance(screen, kind)
    return screen


@pytest.mark.asyncio
async def test_error_details_of_a_completed_job_is_no_error(demo_config, console_factory) -> None:
    """e on a job that completed with status 0x0000 says nothing went wrong, no error dialog;
    on a completed job with failed instances it shows them."""
    use_database(demo_config.effective_database_url)
    clean = ended_job(demo_config, JobState.COMPLETED, last_status=st.SUCCESS, total=3, completed=3)
    async with console_factory(demo_config) as console:
        screen = await open_screen(console, "3", TransfersScreen)
        table = screen.query_one(JobTable)
        table.move_cursor(row=table.get_row_index(str(clean.id)))
        await console.pilot.press("e")
        await settle(console)
        assert not isinstance(console.app.screen, ErrorDialog)
        (note,) = [n for n in console.app._notifications if n.title == "No error"]
        assert f"Job {clean.id} is completed" in note.message


@pytest.mark.asyncio
async def test_error_details_of_a_job_with_failed_instances(demo_config, console_factory) -> None:
    """e on a completed job whose sub-operations partly failed lists the failed instances."""
    use_database(demo_config.effective_database_url)
    partial = ended_job(
        demo_config, JobState.COMPLETED, last_status=0xB000, failed_uids=["1.2.9"], failed=1
    )
    async with console_factory(demo_config) as console:
        await open_screen(console, "3", TransfersScreen)
        await console.pilot.press("e")
        await settle(console)
        dialog = console.app.screen
        assert isinstance(dialog, ErrorDialog)
        assert dialog.error.title == f"Job {partial.id} completed"
        assert "1.2.9" in dialog.error.message


def test_state_column_holds_every_state() -> None:
    """The State column is wide enough for every state, "cancelling" included (not clipped)."""
    width = {key: w for key, _header, w in COLUMNS}["state"]
    cancelling = SimpleNamespace(state=JobState.RUNNING, cancel_requested=True)
    labels = [str(state_text(cancelling))] + [str(state) for state in JobState]  # type: ignore[arg-type]
    assert "cancelling" in labels
    assert max(len(label) for label in labels) <= width


@pytest.mark.asyncio
async def test_home_and_end_go_to_the_first_and_last_row(demo_config, console_factory) -> None:
    """In the study list (a row table) End moves the cursor to the last row, Home to the first,
    as the help says (Textual's tables otherwise scroll sideways)."""
    async with console_factory(demo_config) as console:
        table = console.app.screen.query_one(StudyTable)
        table.focus()
        await console.pilot.pause()
        assert table.row_count > 2
        await console.pilot.press("end")
        assert table.cursor_row == table.row_count - 1
        await console.pilot.press("home")
        assert table.cursor_row == 0


@pytest.mark.asyncio
async def test_help_says_how_to_close_it_and_end_works(demo_config, console_factory) -> None:
    """The help screen says Escape closes it; End goes to its last key."""
    async with console_factory(demo_config, size=(80, 24)) as console:
        help_screen = await open_screen(console, "question_mark", HelpScreen)
        assert "Escape or ? closes" in str(help_screen.query_one("#help-notes").render())
        table = help_screen.query_one("#help-keys", RowTable)
        await console.pilot.press("end")
        assert table.cursor_row == table.row_count - 1
        await console.pilot.press("escape")
        assert not isinstance(console.app.screen, HelpScreen)


@pytest.mark.asyncio
async def test_confirm_dialog_names_its_keys(demo_config, console_factory) -> None:
    """The confirmation says which key confirms (y) and which cancels (n, Esc)."""
    async with console_factory(demo_config) as console:
        console.app.push_screen(ConfirmDialog("Remove node x?", "It goes.", "Remove"))
        await settle(console)
        keys = str(console.app.screen.query_one("#confirm-keys").render())
        assert "y: Remove" in keys and "n, Esc: No" in keys


@pytest.mark.asyncio
async def test_find_from_the_node_select_moves_to_the_studies(demo_config, console_factory) -> None:
    """f pressed on the node select runs the query and puts the focus on the study list, so
    Enter then opens a study instead of the node list again."""
    closed = RemoteNode("nowhere", "NOBODY", "127.0.0.1", 1)
    async with console_factory(replace(demo_config, nodes=(closed,))) as console:
        screen = await open_screen(console, "2", RemoteScreen)
        screen.query_one("#remote-node", Select).focus()
        await console.pilot.pause()
        await console.pilot.press("f")
        await settle(console)
        dialog = console.app.screen
        assert isinstance(dialog, ErrorDialog)  # nobody listens on port 1
        assert "is the node running" in dialog.error.message
        await console.pilot.press("escape")
        await console.pilot.pause()
        assert screen.query_one(RemoteStudyTable).has_focus


@pytest.mark.asyncio
async def test_a_send_job_names_the_patient(demo_config, console_factory) -> None:
    """A send queued from the archive is described by patient and study, not by UID (the UID
    stays in the job's parameters)."""
    elsewhere = RemoteNode("elsewhere", "ELSEWHERE", "127.0.0.1", 1)
    async with console_factory(replace(demo_config, nodes=(elsewhere,))) as console:
        console.app.animation_level = "none"
        study = console.app.screen.query_one(StudyTable).selected_uid
        await console.pilot.press("S")
        await settle(console)
        await console.pilot.press("enter")
        await settle(console)
        (queued,) = console.posted(SendQueued)
        job = queued.job
        assert job.description == (
            "send the study of SMITH, John Q (MR BRAIN WITHOUT CONTRAST) to elsewhere"
        )
        assert job.params["study_uids"] == [study]


def test_retrieve_label() -> None:
    """A retrieve from the remote screen is described by patient and study (and series count)."""
    study = SimpleNamespace(patient_name="DOE^John", study_description="CT HEAD")
    assert retrieve_label(study, []) == "the study of DOE, John (CT HEAD)"  # type: ignore[arg-type]
    assert retrieve_label(study, ["1", "2"]) == "2 series of the study of DOE, John (CT HEAD)"  # type: ignore[arg-type]
    assert retrieve_label(None, []) == ""
