"""The study list: one page of studies, paging at its edges, sortable by its headers."""

from __future__ import annotations

import contextlib

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from tui_pacs.model import StudySort, StudySummary
from tui_pacs.ui.widgets.row_table import RowTable

#: (column key, header, sort it stands for, width or None for flexible)
COLUMNS: tuple[tuple[str, str, StudySort | None, int | None], ...] = (
    ("patient_name", "Patient", StudySort.PATIENT_NAME, 20),
    ("patient_id", "ID", StudySort.PATIENT_ID, 10),
    ("study_date", "Date", StudySort.STUDY_DATE, 16),
    ("modalities", "Mod", StudySort.MODALITIES_IN_STUDY, 5),
    ("description", "Description", StudySort.STUDY_DESCRIPTION, 24),
    ("accession", "Accession", StudySort.ACCESSION_NUMBER, 10),
    ("images", "Ser/Img", StudySort.NUMBER_OF_STUDY_RELATED_INSTANCES, 8),
)


def format_date(study_date: str, study_time: str = "") -> str:
    """``YYYYMMDD`` (+ ``HHMM``) as ``YYYY-MM-DD HH:MM`` for people."""
    if len(study_date) != 8:
        return study_date
    text = f"{study_date[:4]}-{study_date[4:6]}-{study_date[6:]}"
    if len(study_time) >= 4 and study_time[:4].isdigit():
        text += f" {study_time[:2]}:{study_time[2:4]}"
    return text


def format_name(name: str) -> str:
    """A DICOM person name (``FAMILY^Given^Middle``) as ``FAMILY, Given Middle``."""
    parts = [p.strip() for p in name.split("=")[0].split("^")]
    family = parts[0] if parts else ""
    rest = " ".join(p for p in parts[1:4] if p)
    return f"{family}, {rest}" if rest else family


def study_cells(study: StudySummary) -> list[str | Text]:
    """A study's cells up to the accession number (the columns every study table shows)."""
    return [
        Text(format_name(study.patient_name), overflow="ellipsis", no_wrap=True),
        study.patient_id,
        format_date(study.study_date, study.study_time),
        "/".join(study.modalities_in_study),
        Text(study.study_description, overflow="ellipsis", no_wrap=True),
        study.accession_number,
    ]


class StudyTable(RowTable):
    """Shows one page of studies; the row key is the Study Instance UID.

    Moving past the last row (or above the first) asks for the neighbouring page with
    :class:`StudyTable.PageRequested`; clicking a header asks for a sort with
    :class:`StudyTable.SortRequested`.
    """

    class PageRequested(Message):
        """The cursor ran off an edge of the page: ``direction`` is "next" or "previous"."""

        def __init__(self, direction: str) -> None:
            super().__init__()
            self.direction = direction

    class SortRequested(Message):
        """A header was clicked: sort by this column."""

        def __init__(self, sort: StudySort) -> None:
            super().__init__()
            self.sort = sort

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.has_next = False
        self.has_previous = False
        self.sort_by = StudySort.STUDY_DATE
        self.descending = True

    def on_mount(self) -> None:
        for key, header, _sort, width in COLUMNS:
            self.add_column(header, key=key, width=width)
        self._label_headers()

    def _label_headers(self) -> None:
        arrow = "▼" if self.descending else "▲"
        for key, header, sort, _width in COLUMNS:
            column = self.columns.get(key)  # type: ignore[call-overload]
            if column is not None:
                column.label = Text(f"{header}{arrow}" if sort == self.sort_by else header)
        self.refresh()

    def set_sort(self, sort: StudySort, descending: bool) -> None:
        """Show which column sorts the list."""
        self.sort_by = sort
        self.descending = descending
        self._label_headers()

    @property
    def selected_uid(self) -> str | None:
        """Study Instance UID under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return key.value

    def show_studies(
        self,
        studies: tuple[StudySummary, ...],
        *,
        keep_uid: str | None = None,
        cursor: str = "keep",
        has_previous: bool = False,
        has_next: bool = False,
    ) -> None:
        """Replace the rows with ``studies``.

        Args:
            studies: The page.
            keep_uid: Put the cursor back on this study if it is on the page.
            cursor: Where the cursor goes otherwise: "keep" (same row), "top" or "bottom".
            has_previous: A page exists before this one.
            has_next: A page exists after this one.
        """
        row = self.cursor_row
        scroll_y = self.scroll_y
        self.has_previous, self.has_next = has_previous, has_next
        self.clear()
        for study in studies:
            self.add_row(*self._cells(study), key=study.study_instance_uid)
        if not studies:
            return
        target = {"top": 0, "bottom": len(studies) - 1}.get(cursor, min(row, len(studies) - 1))
        if keep_uid is not None:
            with contextlib.suppress(Exception):
                target = self.get_row_index(keep_uid)
        if cursor == "keep":
            self.scroll_to(y=scroll_y, animate=False, immediate=True)
        self.move_cursor(row=target, animate=False, scroll=cursor != "keep")

    @staticmethod
    def _cells(study: StudySummary) -> list[str | Text]:
        return [
            *study_cells(study),
            Text(
                f"{study.number_of_study_related_series}/{study.number_of_study_related_instances}",
                justify="right",
            ),
        ]

    def action_cursor_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1:
            if self.has_next:
                self.post_message(self.PageRequested("next"))
            return
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.cursor_row <= 0:
            if self.has_previous:
                self.post_message(self.PageRequested("previous"))
            return
        super().action_cursor_up()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        for key, _header, sort, _width in COLUMNS:
            if key == event.column_key.value and sort is not None:
                self.post_message(self.SortRequested(sort))
