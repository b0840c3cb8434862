"""The transfers screen: every job (retrieve, send) with its progress, rate, counts and status.

The list follows the change feed: the job runner (in this console's node or in another process)
appends a ``job`` change at every progress write, and the screen re-reads the job table then,
updating the rows in place so the cursor never moves. Cancel asks first; retry queues a failed
or cancelled job again.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Label, Static
from textual.worker import get_current_worker

from tui_pacs.errors import NetworkError
from tui_pacs.model import JobInfo, JobState
from tui_pacs.net.status import SUCCESS
from tui_pacs.services import jobs as job_service
from tui_pacs.services.jobs import CHANGE_KIND as JOB_CHANGE_KIND
from tui_pacs.services.jobs import JobError
from tui_pacs.ui.dialogs.confirm import ConfirmDialog
from tui_pacs.ui.messages import ChangesArrived
from tui_pacs.ui.screens.base import ConsoleScreen
from tui_pacs.ui.widgets.job_table import (
    JobTable,
    format_rate,
    job_done,
    job_rate,
    local_time,
    progress_bar,
    state_text,
    status_line,
    sub_operations,
)

#: Jobs listed (newest first).
LIST_LIMIT = 200
#: (name, states shown) of the views ``f`` cycles through.
VIEWS: tuple[tuple[str, frozenset[JobState] | None], ...] = (
    ("all jobs", None),
    ("active", frozenset({JobState.QUEUED, JobState.RUNNING})),
    ("failed or cancelled", frozenset({JobState.FAILED, JobState.CANCELLED})),
)


class TransfersScreen(ConsoleScreen):
    """Every job, live; cancel and retry."""

    CSS_PATH = "transfers.tcss"

    BINDINGS = [
        Binding("c", "cancel_job", "Cancel job"),
        Binding("r", "retry_job", "Retry job"),
        Binding("e", "job_error", "Error details"),
        Binding("f", "cycle_view", "Filter jobs"),
        Binding("ctrl+r", "reload", "Reload jobs", show=False),
    ]

    class JobsShown(Message, bubble=False):
        """The job list on screen was (re)drawn from ``jobs``."""

        def __init__(self, jobs: list[JobInfo]) -> None:
            super().__init__()
            self.jobs = jobs

    class CancelRequested(Message, bubble=False):
        """Job ``job_id`` was asked to stop; ``state`` is what the queue answered."""

        def __init__(self, job_id: int, state: JobState) -> None:
            super().__init__()
            self.job_id = job_id
            self.state = state

    class Retried(Message, bubble=False):
        """A failed or cancelled job was queued again."""

        def __init__(self, job: JobInfo) -> None:
            super().__init__()
            self.job = job

    def __init__(self) -> None:
        super().__init__()
        self.view = 0

    def compose_body(self) -> ComposeResult:
        yield Label("Jobs", id="jobs-title", classes="section-title")
        yield JobTable(id="jobs")
        yield Static("No job selected", id="job-detail")

    def on_mount(self) -> None:
        self.query_one(JobTable).focus()
        self.load_jobs()

    # -- reading ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="jobs", exit_on_error=False)
    def load_jobs(self) -> None:
        """Read the newest jobs of the current view."""
        _name, states = VIEWS[self.view]
        jobs = job_service.list_jobs(self.context.config, states, LIST_LIMIT)
        if not get_current_worker().is_cancelled:
            self.post_message(self.JobsShown(jobs))

    @on(JobsShown)
    def _jobs_shown(self, message: JobsShown) -> None:
        now = self.context.now()
        table = self.query_one(JobTable)
        table.show_jobs(message.jobs, {j.id: local_time(j.created_at, now) for j in message.jobs})
        running = sum(1 for j in message.jobs if j.state == JobState.RUNNING)
        queued = sum(1 for j in message.jobs if j.state == JobState.QUEUED)
        name, _states = VIEWS[self.view]
        self.query_one("#jobs-title", Label).update(
            f"Jobs · {name} · {len(message.jobs)} shown · {running} running · {queued} queued"
        )
        self._show_detail(table.current)

    def on_changes_arrived(self, message: ChangesArrived) -> None:
        if JOB_CHANGE_KIND in message.kinds:
            self.load_jobs()

    @on(DataTable.RowHighlighted, "#jobs")
    def _job_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(self.query_one(JobTable).current)

    @on(DataTable.RowSelected, "#jobs")
    def _job_selected(self, event: DataTable.RowSelected) -> None:
        self.action_job_error()

    def _show_detail(self, job: JobInfo | None) -> None:
        detail = self.query_one("#job-detail", Static)
        if job is None:
            detail.update("No job selected")
            return
        now = self.context.now()
        head = state_text(job)
        head.append(f"  ·  job {job.id} · {job.kind} · {job.node_name}", style="bold")
        if job.attempts:
            head.append(f" · attempt {job.attempts + 1}")
        head.append("\n")
        head.append(job.description + "\n", style="dim")
        head.append_text(progress_bar(job, width=30))
        total = "?" if job.total is None else str(job.total)
        rate = format_rate(job_rate(job))
        head.append(f"  {job_done(job)} of {total} instances")
        if rate:
            head.append(f" · {rate}")
        head.append("\n" + sub_operations(job) + "\n")
        head.append(status_line(job) + "\n")
        times = f"queued {local_time(job.created_at, now)}"
        if job.started_at is not None:
            times += f" · started {local_time(job.started_at, now)}"
        if job.finished_at is not None:
            times += f" · ended {local_time(job.finished_at, now)}"
        head.append(times, style="dim")
        if job.error:
            style = "bold red" if job.state == JobState.FAILED else "yellow"
            head.append("\n" + job.error, style=style)
        if job.failed_uids:
            head.append(f"\n{len(job.failed_uids)} failed instance(s), first {job.failed_uids[0]}")
        detail.update(head)

    # -- actions ---------------------------------------------------------------------------

    def _current(self) -> JobInfo | None:
        job = self.query_one(JobTable).current
        if job is None:
            self.notify("No job selected", severity="warning")
        return job

    def action_cancel_job(self) -> None:
        """Cancel the selected job (asks first)."""
        job = self._current()
        if job is None:
            return
        if job.state.finished:
            self.console.show_error(
                JobError(f"job {job.id} has already ended ({job.state})", "Cannot cancel")
            )
            return
        total = "?" if job.total is None else str(job.total)
        message = f"{job.description}\n{job_done(job)} of {total} done. " + (
            "The node stops it with a C-CANCEL; what already arrived stays in the archive."
            if job.state == JobState.RUNNING
            else "It has not started yet."
        )

        def answer(confirmed: bool | None) -> None:
            if confirmed:
                self.cancel_job(job.id)

        self.app.push_screen(ConfirmDialog(f"Cancel job {job.id}?", message, "Cancel job"), answer)

    @work(thread=True, group="job-actions", exit_on_error=False)
    def cancel_job(self, job_id: int) -> None:
        """Ask the queue to cancel a job."""
        state = job_service.cancel_job(self.context.config, job_id)
        self.post_message(self.CancelRequested(job_id, state))

    @on(CancelRequested)
    def _cancel_requested(self, message: CancelRequested) -> None:
        if message.state == JobState.CANCELLED:
            self.notify(f"Job {message.job_id} cancelled")
        else:
            self.notify(f"Job {message.job_id}: cancel sent to the node")
        self.load_jobs()

    def action_retry_job(self) -> None:
        """Queue the selected failed or cancelled job again."""
        job = self._current()
        if job is not None:
            self.retry_job(job.id)

    @work(thread=True, group="job-actions", exit_on_error=False)
    def retry_job(self, job_id: int) -> None:
        """Queue a job again."""
        job = job_service.retry_job(self.context.config, job_id)
        self.post_message(self.Retried(job))

    @on(Retried)
    def _retried(self, message: Retried) -> None:
        self.notify(f"Job {message.job.id} queued again (attempt {message.job.attempts + 1})")
        self.load_jobs()

    def action_job_error(self) -> None:
        """Show why the selected job failed in the error dialog."""
        job = self._current()
        if job is None:
            return
        if not job.error and not job.failed_uids and job.last_status in (None, SUCCESS):
            self.notify(f"Job {job.id} is {job.state}; nothing went wrong", title="No error")
            return
        title = f"Job {job.id} {job.state}"
        text = job.error or "The node's last answer was not a success."
        if job.failed_uids:
            shown = ", ".join(job.failed_uids[:5])
            more = len(job.failed_uids) - 5
            text += f"\nFailed instances: {shown}" + (f" and {more} more" if more > 0 else "")
        self.console.show_error(NetworkError(text, title, status=job.last_status))

    def action_cycle_view(self) -> None:
        """Show all jobs, only active ones, or only failed and cancelled ones."""
        self.view = (self.view + 1) % len(VIEWS)
        self.load_jobs()

    def action_reload(self) -> None:
        """Read the job table again."""
        self.load_jobs()
