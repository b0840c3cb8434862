"""The job list of the transfers screen, and how one job is drawn: progress bar, rate, counts."""

from __future__ import annotations

import contextlib
from datetime import datetime

from rich.text import Text

from tui_pacs.model import JobInfo, JobState
from tui_pacs.net.status import describe
from tui_pacs.ui.widgets.row_table import RowTable
from tui_pacs.ui.widgets.status_bar import describe_age

#: Colour of each state (the state column and the bar).
STATE_STYLES = {
    JobState.QUEUED: "yellow",
    JobState.RUNNING: "bold cyan",
    JobState.COMPLETED: "green",
    JobState.FAILED: "bold red",
    JobState.CANCELLED: "magenta",
}
#: Cells of the bar in the list.
BAR_WIDTH = 10

#: (column key, header, width). Numbers are right-aligned by padding: this DataTable ignores the
#: justification of a cell's Text.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("id", "#", 4),
    ("state", "State", 10),  # "cancelling"
    ("progress", "Progress", BAR_WIDTH + 5),
    ("done", "Done", 9),
    ("rate", "Rate", 8),
    ("kind", "Kind", 8),
    ("node", "Node", 10),
    ("status", "Status", 6),
    ("queued", "Queued", 14),
)


def job_done(job: JobInfo) -> int:
    """Sub-operations finished so far, whatever their outcome."""
    return job.completed + job.failed + job.warning


def job_fraction(job: JobInfo) -> float | None:
    """How far the job is, 0 to 1; None while the total is unknown."""
    if job.state == JobState.COMPLETED:
        return 1.0
    if job.total:
        return min(1.0, job_done(job) / job.total)
    return None


def job_rate(job: JobInfo) -> float | None:
    """Instances per second from the start to the last progress (or the end); None if unknown."""
    start = job.started_at
    if start is None or job.state == JobState.QUEUED:
        return None
    end = job.finished_at or job.updated_at
    seconds = (end - start).total_seconds()
    done = job_done(job)
    if seconds <= 0 or done <= 0:
        return None
    return done / seconds


def format_rate(rate: float | None) -> str:
    """``12.3/s``, ``0.40/s`` or empty."""
    if rate is None:
        return ""
    return f"{rate:.1f}/s" if rate >= 10 else f"{rate:.2f}/s"


def format_counts(job: JobInfo) -> str:
    """``27/60`` (``27`` while the total is unknown)."""
    done = job_done(job)
    return f"{done}/{job.total}" if job.total is not None else str(done)


def format_status(status: int | None) -> str:
    """A DIMSE status as ``0xA801`` (empty when none)."""
    return "" if status is None else f"{status:04X}"


def progress_bar(job: JobInfo, width: int = BAR_WIDTH, percent: bool = True) -> Text:
    """A bar of ``width`` cells in the job's state colour, then the percentage."""
    fraction = job_fraction(job)
    style = STATE_STYLES.get(job.state, "")
    bar = Text(no_wrap=True)
    if fraction is None:
        bar.append("·" * width, style="dim")
        if percent:
            bar.append("    ?")
        return bar
    filled = round(fraction * width)
    bar.append("━" * filled, style=style)
    bar.append("─" * (width - filled), style="dim")
    if percent:
        bar.append(f" {fraction * 100:3.0f}%")
    return bar


def state_text(job: JobInfo) -> Text:
    """The state, coloured; a running job with a cancel pending says so."""
    label = "cancelling" if job.cancel_requested and job.state == JobState.RUNNING else job.state
    text = Text()
    text.append(str(label), style=STATE_STYLES.get(job.state, ""))
    return text


def sub_operations(job: JobInfo) -> str:
    """``completed 27 · failed 0 · warning 1 · remaining 32``."""
    remaining = "?" if job.remaining is None else str(job.remaining)
    if job.state.finished and job.remaining is None:
        remaining = "0"
    return (
        f"completed {job.completed} · failed {job.failed} · warning {job.warning} · "
        f"remaining {remaining}"
    )


def status_line(job: JobInfo) -> str:
    """The last DIMSE status, described (PS3.4 / PS3.7 names)."""
    if job.last_status is None:
        return "DIMSE status: none yet"
    return f"DIMSE status {describe(job.last_status)}"


def row_cells(job: JobInfo, when: str) -> list[str | Text]:
    """The cells of one job's row (``when``: the queued time as shown)."""
    return [
        str(job.id).rjust(4),
        state_text(job),
        progress_bar(job),
        format_counts(job).rjust(9),
        format_rate(job_rate(job)).rjust(8),
        job.kind,
        Text(job.node_name, overflow="ellipsis", no_wrap=True),
        format_status(job.last_status),
        when,
    ]


class JobTable(RowTable):
    """Jobs, newest first; the row key is the job id (as text).

    Refreshing with the same jobs updates the cells in place, so the cursor and the scroll
    position never move while progress comes in.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.jobs: dict[int, JobInfo] = {}

    def on_mount(self) -> None:
        for key, header, width in COLUMNS:
            self.add_column(header, key=key, width=width)

    def _cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    @property
    def current(self) -> JobInfo | None:
        """The job under the cursor."""
        key = self._cursor_key()
        return self.jobs.get(int(key)) if key is not None else None

    def show_jobs(self, jobs: list[JobInfo], when: dict[int, str]) -> None:
        """Show ``jobs`` (``when``: queued time text per job id), keeping cursor and scroll."""
        ids = [str(job.id) for job in jobs]
        current = [str(key.value) for key in self.rows]
        keep = self._cursor_key()
        previous = self.jobs
        self.jobs = {job.id: job for job in jobs}
        if ids == current:
            for job in jobs:
                if previous.get(job.id) == job:
                    continue
                for (key, _header, _width), cell in zip(
                    COLUMNS, row_cells(job, when.get(job.id, "")), strict=True
                ):
                    self.update_cell(str(job.id), key, cell)
            return
        row, scroll_y = self.cursor_row, self.scroll_y
        self.clear()
        for job in jobs:
            self.add_row(*row_cells(job, when.get(job.id, "")), key=str(job.id))
        if not jobs:
            return
        target = min(row, len(jobs) - 1)
        if keep is not None:
            with contextlib.suppress(Exception):
                target = self.get_row_index(keep)
        self.scroll_to(y=scroll_y, animate=False, immediate=True)
        self.move_cursor(row=target, animate=False, scroll=True)


def local_time(at: datetime | None, now: datetime) -> str:
    """A naive UTC time as local ``HH:MM:SS`` today, ``DD Mon HH:MM`` before (empty: None)."""
    return "" if at is None else describe_age(at, now)
