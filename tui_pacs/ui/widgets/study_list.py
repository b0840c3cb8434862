"""The paged study list: a title line and the study table, filled a page at a time from the index.

It keeps the filter, the sort and the page it shows; every read runs in a thread worker (one
page, then the count), and reloading keeps the same page, the same filter and the cursor on the
same study.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label
from textual.worker import get_current_worker

from tui_pacs.model import StudyFilter, StudyPage, StudySort
from tui_pacs.services.browse import Browser
from tui_pacs.ui.widgets.study_table import COLUMNS, StudyTable

SORT_NAMES = {
    StudySort.STUDY_DATE: "date",
    StudySort.PATIENT_NAME: "name",
    StudySort.PATIENT_ID: "patient ID",
    StudySort.ACCESSION_NUMBER: "accession",
    StudySort.MODALITIES_IN_STUDY: "modality",
    StudySort.STUDY_DESCRIPTION: "description",
    StudySort.NUMBER_OF_STUDY_RELATED_INSTANCES: "images",
}
#: Sorts that start largest first (the newest study, the biggest).
DESCENDING_FIRST = (StudySort.STUDY_DATE, StudySort.NUMBER_OF_STUDY_RELATED_INSTANCES)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page to fetch: after a key, before a key, the last, or (all empty) the first."""

    after: tuple[object, ...] | None = None
    before: tuple[object, ...] | None = None
    last: bool = False


class StudyList(Vertical):
    """Studies matching a filter, a page at a time.

    Args:
        browser: Reads the index.
        page_size: Studies per page.
    """

    class PageShown(Message):
        """A page of studies is on screen (``row_offset``: rows before it)."""

        def __init__(self, page: StudyPage, offset: int, reason: str) -> None:
            super().__init__()
            self.page = page
            self.row_offset = offset
            self.reason = reason

    class CountShown(Message):
        """The number of studies matching ``study_filter`` is on screen."""

        def __init__(self, study_filter: StudyFilter, total: int) -> None:
            super().__init__()
            self.study_filter = study_filter
            self.total = total

    class _PageLoaded(Message):
        def __init__(
            self, page: StudyPage, request: PageRequest, flt: StudyFilter, cursor: str, reason: str
        ) -> None:
            super().__init__()
            self.page, self.request, self.flt = page, request, flt
            self.cursor, self.reason = cursor, reason

    def __init__(self, browser: Browser, page_size: int = 100, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.browser = browser
        self.page_size = page_size
        self.study_filter = StudyFilter()
        self.sort = StudySort.STUDY_DATE
        self.descending = True
        self.request = PageRequest()
        self.page: StudyPage | None = None
        self.row_offset = 0
        self.total: int | None = None

    def compose(self) -> ComposeResult:
        yield Label("Studies", id="studies-title", classes="section-title")
        yield StudyTable(id="studies")

    @property
    def table(self) -> StudyTable:
        """The table of the page."""
        return self.query_one(StudyTable)

    # -- what to show --------------------------------------------------------------------------

    def set_filter(self, study_filter: StudyFilter, reason: str = "filter") -> None:
        """Show the first page of ``study_filter``."""
        self.study_filter = study_filter
        self.total = None
        self.load_page(PageRequest(), cursor="top", reason=reason)

    def set_sort(self, sort: StudySort, descending: bool) -> None:
        """Sort by ``sort``; show the first page."""
        self.sort, self.descending = sort, descending
        self.table.set_sort(sort, descending)
        self.load_page(PageRequest(), cursor="top", reason="sort")

    def next_sort(self) -> None:
        """Sort by the next column."""
        sorts = [sort for _key, _header, sort, _width in COLUMNS if sort is not None]
        sort = sorts[(sorts.index(self.sort) + 1) % len(sorts)]
        self.set_sort(sort, sort in DESCENDING_FIRST)

    def next_page(self) -> None:
        """Show the next page."""
        if self.page is not None and self.page.has_next:
            self.load_page(PageRequest(after=self.page.last_key), cursor="top", reason="next")

    def previous_page(self, cursor: str = "top") -> None:
        """Show the previous page."""
        if self.page is not None and self.page.has_previous:
            request = PageRequest(before=self.page.first_key)
            self.load_page(request, cursor=cursor, reason="previous")

    def first_page(self) -> None:
        """Show the first page."""
        self.load_page(PageRequest(), cursor="top", reason="first")

    def last_page(self) -> None:
        """Show the last page."""
        self.load_page(PageRequest(last=True), cursor="bottom", reason="last")

    def reload(self, reason: str = "reload") -> None:
        """Read the page shown again (new arrivals); the cursor stays on its study."""
        self.load_page(self.request, cursor="keep", reason=reason)

    # -- reading -------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="studies", exit_on_error=False)
    def load_page(self, request: PageRequest, cursor: str = "keep", reason: str = "") -> None:
        """Fetch a page of studies, then count the matches."""
        worker = get_current_worker()
        flt = self.study_filter
        page = self.browser.study_page(
            flt,
            sort=self.sort,
            descending=self.descending,
            after=request.after,
            before=request.before,
            last=request.last,
            limit=self.page_size,
        )
        if worker.is_cancelled:
            return
        self.post_message(self._PageLoaded(page, request, flt, cursor, reason))
        total = self.browser.count_studies(flt)
        if not worker.is_cancelled:
            self.post_message(self.CountShown(flt, total))

    @on(_PageLoaded)
    def _page_loaded(self, message: _PageLoaded) -> None:
        message.stop()
        if message.flt != self.study_filter:
            return  # a page of a filter that has been replaced since
        page = message.page
        if message.reason == "previous":
            self.row_offset = max(0, self.row_offset - len(page.studies))
        elif message.reason == "next" and self.page is not None:
            self.row_offset += len(self.page.studies)
        elif message.reason == "last" and self.total is not None:
            self.row_offset = max(0, self.total - len(page.studies))
        elif message.reason in ("first", "filter", "start", "sort"):
            self.row_offset = 0
        self.page, self.request = page, message.request
        # Drawn from the table's own message loop: the row highlight it posts then has the
        # table as sender and bubbles past this list to the screen (Textual stops a message
        # at the node that sent it).
        self.table.call_later(self._show, page, message.cursor, message.reason)

    def _show(self, page: StudyPage, cursor: str, reason: str) -> None:
        table = self.table
        table.show_studies(
            page.studies,
            keep_uid=table.selected_uid if cursor == "keep" else None,
            cursor=cursor,
            has_previous=page.has_previous,
            has_next=page.has_next,
        )
        self._title()
        self.post_message(self.PageShown(page, self.row_offset, reason))

    @on(CountShown)
    def _count_shown(self, message: CountShown) -> None:
        if message.study_filter == self.study_filter:
            self.total = message.total
            if self.request.last and self.page is not None:
                self.row_offset = max(0, message.total - len(self.page.studies))
            self._title()

    def _title(self) -> None:
        page = self.page
        count = len(page.studies) if page else 0
        total = "…" if self.total is None else f"{self.total:,}"
        span = f"{self.row_offset + 1:,}–{self.row_offset + count:,}" if count else "0"
        arrow = "▼" if self.descending else "▲"
        filtered = "" if self.study_filter.is_empty else " · filtered"
        self.query_one("#studies-title", Label).update(
            f"Studies {span} of {total} · by {SORT_NAMES[self.sort]} {arrow}{filtered}"
        )

    # -- from the table ------------------------------------------------------------------------

    @on(StudyTable.PageRequested)
    def _page_requested(self, message: StudyTable.PageRequested) -> None:
        message.stop()
        if message.direction == "next":
            self.next_page()
        else:
            self.previous_page(cursor="bottom")

    @on(StudyTable.SortRequested)
    def _sort_requested(self, message: StudyTable.SortRequested) -> None:
        message.stop()
        if message.sort == self.sort:
            self.set_sort(self.sort, not self.descending)
        else:
            self.set_sort(message.sort, message.sort in DESCENDING_FIRST)
