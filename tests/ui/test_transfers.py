"""Pilot tests of the transfers screen: progress, live updates, cancel, error details, retry."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from tests.interop.synth import make_ct, new_uid
from tests.peers import NodeProcess, free_port
from tests.ui.remote_peer import PEER_AE, job_end, settle
from tui_pacs.config import Config
from tui_pacs.model import JobInfo, JobState, RemoteNode
from tui_pacs.net import status as st
from tui_pacs.services import jobs as job_service
from tui_pacs.store import jobs as store_jobs
from tui_pacs.store.db import use_database
from tui_pacs.ui.dialogs.confirm import ConfirmDialog
from tui_pacs.ui.dialogs.error import ErrorDialog
from tui_pacs.ui.messages import ChangesArrived
from tui_pacs.ui.screens.transfers import TransfersScreen
from tui_pacs.ui.widgets.job_table import JobTable

pytestmark = pytest.mark.asyncio

NODE = RemoteNode("pacs", "PACS", "127.0.0.1", 1, retrieve_method="get")


def queue(config: Config, study_uid: str) -> JobInfo:
    """A retrieve job of ``study_uid`` from NODE (nothing runs it: the console hosts no node)."""
    return job_service.queue_retrieve(config, NODE, study_uid)


def row(table: JobTable, job_id: int) -> list[str]:
    """The cells of a job's row, as text."""
    return [str(cell) for cell in table.get_row(str(job_id))]


def detail(screen: TransfersScreen) -> str:
    return str(screen.query_one("#job-detail").render())


async def open_transfers(console) -> TransfersScreen:  # type: ignore[no-untyped-def]
    console.app.animation_level = "none"  # no waiting for dialog and scroll animations
    await console.pilot.press("3")
    await settle(console)
    screen = console.app.screen
    assert isinstance(screen, TransfersScreen)
    return screen


async def test_progress_counts_rate_and_status(demo_config, console_factory) -> None:
    """A running job shows its bar, done/total, rate, sub-operation counts and DIMSE status."""
    use_database(demo_config.effective_database_url)
    waiting = queue(demo_config, "1.2.3.1")
    running = queue(demo_config, "1.2.3.2")
    assert store_jobs.claim(running.id, "node-a")
    store_jobs.record_progress(
        running.id, "node-a", total=60, completed=27, failed=1, warning=2, remaining=30,
        last_status=0xFF00,
    )  # fmt: skip
    async with console_factory(demo_config) as console:
        screen = await open_transfers(console)
        table = screen.query_one(JobTable)
        assert [j.id for j in console.posted(TransfersScreen.JobsShown)[-1].jobs] == [
            running.id,
            waiting.id,
        ]
        cells = row(table, running.id)
        assert cells[1] == "running" and "50%" in cells[2] and cells[3].strip() == "30/60"
        assert cells[4].strip().endswith("/s") and cells[7] == "FF00"
        assert row(table, waiting.id)[1] == "queued" and "?" in row(table, waiting.id)[2]
        text = detail(screen)
        assert "completed 27 · failed 1 · warning 2 · remaining 30" in text
        assert "DIMSE status 0xFF00 Pending" in text and "30 of 60 instances" in text
        assert "1 running · 1 queued" in str(screen.query_one("#jobs-title").render())


async def test_live_updates_keep_the_cursor(demo_config, console_factory) -> None:
    """Progress and new jobs arrive through the change feed; the cursor stays on its job."""
    use_database(demo_config.effective_database_url)
    jobs = [queue(demo_config, f"1.2.3.{i}") for i in range(1, 4)]
    async with console_factory(demo_config) as console:
        screen = await open_transfers(console)
        table = screen.query_one(JobTable)
        await console.pilot.press("down")
        assert table.current is not None and table.current.id == jobs[1].id
        assert store_jobs.claim(jobs[1].id, "node-a")
        store_jobs.record_progress(
            jobs[1].id, "node-a", total=10, completed=4, failed=0, warning=0, remaining=6,
            last_status=0xFF00,
        )  # fmt: skip
        console.app.poll_changes()
        await settle(console)
        assert "job" in console.posted(ChangesArrived)[-1].kinds
        assert table.current is not None and table.current.id == jobs[1].id
        assert row(table, jobs[1].id)[3].strip() == "4/10" and table.cursor_row == 1
        newest = queue(demo_config, "1.2.3.9")
        console.app.poll_changes()
        await settle(console)
        assert table.row_count == 4 and row(table, newest.id)[0].strip() == str(newest.id)
        assert table.current is not None and table.current.id == jobs[1].id
        assert table.cursor_row == 2
        assert "4 of 10 instances" in detail(screen)


async def test_cancel_asks_first(demo_config, console_factory) -> None:
    """c asks for confirmation; n keeps the job, y cancels it; an ended job cannot be cancelled."""
    use_database(demo_config.effective_database_url)
    job = queue(demo_config, "1.2.3.1")
    async with console_factory(demo_config) as console:
        screen = await open_transfers(console)
        await console.pilot.press("c")
        dialog = console.app.screen
        assert isinstance(dialog, ConfirmDialog) and dialog.title_text == f"Cancel job {job.id}?"
        await console.pilot.press("n")
        await settle(console)
        assert not console.posted(TransfersScreen.CancelRequested)
        assert job_service.get_job(demo_config, job.id).state == JobState.QUEUED
        await console.pilot.press("c", "y")
        await settle(console)
        (requested,) = console.posted(TransfersScreen.CancelRequested)
        assert requested.job_id == job.id and requested.state == JobState.CANCELLED
        assert row(screen.query_one(JobTable), job.id)[1] == "cancelled"
        assert "cancelled before it started" in detail(screen)
        await console.pilot.press("c")  # already ended: the error dialog, no question
        await settle(console)
        refused = console.app.screen
        assert isinstance(refused, ErrorDialog) and refused.error.title == "Cannot cancel"


async def test_views_cycle(demo_config, console_factory) -> None:
    """f shows all jobs, then the active ones, then the failed and cancelled ones."""
    use_database(demo_config.effective_database_url)
    active = queue(demo_config, "1.2.3.1")
    ended = queue(demo_config, "1.2.3.2")
    job_service.cancel_job(demo_config, ended.id)
    async with console_factory(demo_config) as console:
        screen = await open_transfers(console)
        table = screen.query_one(JobTable)
        assert table.row_count == 2
        await console.pilot.press("f")
        await settle(console)
        assert list(table.jobs) == [active.id]
        await console.pilot.press("f")
        await settle(console)
        assert list(table.jobs) == [ended.id]
        assert "failed or cancelled" in str(screen.query_one("#jobs-title").render())


@pytest.mark.slow
async def test_failed_job_details_and_retry(
    demo_template: Path, demo_config, console_factory, tmp_path: Path
) -> None:
    """A retrieve from a node that is down fails with its reason; once it is up, r retries it."""
    port = free_port()
    later = RemoteNode("later", PEER_AE, "127.0.0.1", port, retrieve_method="get")
    config = replace(demo_config, nodes=(later,))
    study_uid = console_study(config)
    async with console_factory(config, start_node=True) as console:
        screen = await open_transfers(console)
        job = job_service.queue_retrieve(config, later, study_uid)
        failed = await job_end(config, job)
        assert failed.state == JobState.FAILED
        console.app.poll_changes()
        await settle(console)
        table = screen.query_one(JobTable)
        assert row(table, job.id)[1] == "failed"
        assert "could not be established" in detail(screen)
        await console.pilot.press("e")
        await settle(console)
        dialog = console.app.screen
        assert isinstance(dialog, ErrorDialog) and dialog.error.title == f"Job {job.id} failed"
        assert "could not be established" in dialog.error.message
        await console.pilot.press("escape")
        # The node comes up (with the same demo archive: what arrives is kept as duplicates).
        folder = tmp_path / "later"
        shutil.copytree(demo_template, folder)
        with NodeProcess(folder, port=port, ae_title=PEER_AE):
            await console.pilot.press("r")
            await settle(console)
            (retried,) = console.posted(TransfersScreen.Retried)
            assert retried.job.id == job.id and retried.job.attempts == 1
            done = await job_end(config, job)
        assert done.state == JobState.COMPLETED, done.error
        console.app.poll_changes()
        await settle(console)
        assert row(table, job.id)[1] == "completed"
        assert "attempt 2" in detail(screen) and "100%" in row(table, job.id)[2]


def console_study(config: Config) -> str:
    """The newest study of the console's own demo archive."""
    from tui_pacs.model import StudyFilter
    from tui_pacs.services.browse import Browser

    return Browser(config).study_page(StudyFilter(), limit=1).studies[0].study_instance_uid


async def wait_job(config: Config, job_id: int, done: Callable[[JobInfo], bool]) -> JobInfo:
    """Wait (off the event loop, for at most 30 s) until ``done`` holds for the job."""

    def poll() -> JobInfo:
        deadline = time.monotonic() + 30
        while True:
            info = job_service.get_job(config, job_id)
            if done(info) or time.monotonic() > deadline:
                return info
            time.sleep(0.05)  # polling a row another thread writes

    return await asyncio.to_thread(poll)


async def test_cancel_a_running_retrieve(demo_config, console_factory) -> None:
    """c on a running C-GET: the node sends a C-CANCEL; the job ends cancelled after 1 of 3."""
    study, series = new_uid(), new_uid()
    images = [make_ct(study, series, new_uid(), 8, 8, instance_number=i) for i in (1, 2, 3)]
    first_sent, peer_saw_cancel = threading.Event(), threading.Event()

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = study
        ds.SOPClassesInStudy = str(CTImageStorage)
        yield st.PENDING, ds

    def on_get(event: evt.Event) -> Iterator[Any]:
        yield len(images)
        yield st.PENDING, images[0]
        first_sent.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not event.is_cancelled:
            time.sleep(0.01)  # a slow peer, polling for the cancel as real SCPs do
        peer_saw_cancel.set()
        yield st.CANCEL, None

    ae = AE("SLOW_PACS")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_supported_context(CTImageStorage, scu_role=True, scp_role=True)
    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[(evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get)],
    )
    try:
        port = server.server_address[1]
        slow = RemoteNode("slow", "SLOW_PACS", "127.0.0.1", port, retrieve_method="get")
        config = replace(demo_config, nodes=(slow,))
        async with console_factory(config, start_node=True) as console:
            screen = await open_transfers(console)
            job = job_service.queue_retrieve(config, slow, study)
            assert await asyncio.to_thread(first_sent.wait, 30)
            running = await wait_job(config, job.id, lambda j: j.completed == 1)
            assert running.state == JobState.RUNNING and running.remaining == 2
            console.app.poll_changes()
            await settle(console)
            table = screen.query_one(JobTable)
            assert table.current is not None and table.current.id == job.id
            cells = row(table, job.id)
            assert cells[1] == "running" and cells[3].strip() == "1/3" and "33%" in cells[2]
            await console.pilot.press("c")
            assert "C-CANCEL" in str(console.app.screen.query_one("#confirm-message").render())
            await console.pilot.press("y")
            await settle(console)
            (requested,) = console.posted(TransfersScreen.CancelRequested)
            assert requested.state == JobState.RUNNING  # the node stops it
            final = await job_end(config, job)
            assert peer_saw_cancel.is_set()
            assert final.state == JobState.CANCELLED and final.completed == 1
            console.app.poll_changes()
            await settle(console)
            assert row(table, job.id)[1] == "cancelled"
            assert "cancelled by request" in detail(screen)
    finally:
        server.shutdown()
