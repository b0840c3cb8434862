"""Studies and series found on a remote node, each row markable for a retrieve (Space)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from rich.text import Text

from tui_pacs.model import SeriesSummary, StudySummary
from tui_pacs.ui.widgets.row_table import RowTable
from tui_pacs.ui.widgets.study_table import format_date, study_cells

MARK = "●"


class MarkedTable(RowTable):
    """A row table whose first column shows which rows are marked; row keys are UIDs."""

    COLUMNS: tuple[tuple[str, str, int], ...] = ()

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.marked: set[str] = set()

    def on_mount(self) -> None:
        self.add_column(" ", key="mark", width=1)
        for key, header, width in self.COLUMNS:
            self.add_column(header, key=key, width=width)

    @property
    def current_key(self) -> str | None:
        """Row key (UID) under the cursor."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def keys(self) -> list[str]:
        """Row keys in display order."""
        return [str(key.value) for key in self.rows]

    def toggle_mark(self, key: str | None = None) -> bool:
        """Mark or unmark a row (default: the cursor's); True when it is now marked."""
        key = key or self.current_key
        if key is None:
            return False
        if key in self.marked:
            self.marked.discard(key)
        else:
            self.marked.add(key)
        self.update_cell(key, "mark", Text(MARK, style="bold yellow") if key in self.marked else "")
        return key in self.marked

    def chosen(self) -> list[str]:
        """The marked rows in display order, or the cursor's row when none is marked."""
        if self.marked:
            return [key for key in self.keys() if key in self.marked]
        key = self.current_key
        return [key] if key is not None else []

    def _fill(self, rows: Sequence[tuple[str, list[str | Text]]], keep: str | None) -> None:
        row = self.cursor_row
        self.clear()
        self.marked &= {key for key, _cells in rows}
        for key, cells in rows:
            mark: str | Text = Text(MARK, style="bold yellow") if key in self.marked else ""
            self.add_row(mark, *cells, key=key)
        if not rows:
            return
        target = min(row, len(rows) - 1) if keep is None else 0
        if keep is not None:
            with contextlib.suppress(Exception):
                target = self.get_row_index(keep)
        self.move_cursor(row=target, animate=False)


class RemoteStudyTable(MarkedTable):
    """Studies a C-FIND returned."""

    COLUMNS = (
        ("patient_name", "Patient", 20),
        ("patient_id", "ID", 10),
        ("study_date", "Date", 16),
        ("modalities", "Mod", 5),
        ("description", "Description", 24),
        ("accession", "Accession", 10),
        ("images", "Ser/Img", 8),
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.studies: dict[str, StudySummary] = {}

    @property
    def current(self) -> StudySummary | None:
        """The study under the cursor."""
        key = self.current_key
        return self.studies.get(key) if key is not None else None

    def show_studies(self, studies: Sequence[StudySummary], keep: str | None = None) -> None:
        """Replace the rows (marks of studies still listed are kept)."""
        self.studies = {s.study_instance_uid: s for s in studies}
        self._fill([(s.study_instance_uid, self._cells(s)) for s in studies], keep)

    @staticmethod
    def _cells(study: StudySummary) -> list[str | Text]:
        series = study.number_of_study_related_series
        images = study.number_of_study_related_instances
        counts = f"{series}/{images}" if series or images else ""
        return [*study_cells(study), counts.rjust(8)]


class RemoteSeriesTable(MarkedTable):
    """Series of one remote study."""

    COLUMNS = (
        ("number", "#", 4),
        ("modality", "Mod", 4),
        ("description", "Description", 28),
        ("images", "Img", 5),
        ("date", "Date", 16),
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.series: dict[str, SeriesSummary] = {}

    def show_series(self, series: Sequence[SeriesSummary]) -> None:
        """Replace the rows (marks start empty for a new study)."""
        self.series = {s.series_instance_uid: s for s in series}
        self.marked = set()
        self._fill([(s.series_instance_uid, self._cells(s)) for s in series], None)

    @staticmethod
    def _cells(s: SeriesSummary) -> list[str | Text]:
        number = "" if s.series_number is None else str(s.series_number)
        images = str(s.number_of_series_related_instances or "")
        return [
            number.rjust(4),
            s.modality,
            Text(s.series_description, overflow="ellipsis", no_wrap=True),
            images.rjust(5),
            format_date(s.series_date, s.series_time),
        ]
