"""The series of the selected study."""

from __future__ import annotations

import contextlib

from rich.text import Text

from tui_pacs.model import SeriesSummary
from tui_pacs.ui.widgets.row_table import RowTable
from tui_pacs.ui.widgets.study_table import format_date


class SeriesTable(RowTable):
    """Series of one study; the row key is the Series Instance UID."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.add_column("#", key="number", width=4)
        self.add_column("Mod", key="modality", width=4)
        self.add_column("Description", key="description", width=26)
        self.add_column("Body part", key="body_part", width=10)
        self.add_column("Img", key="images", width=5)
        self.add_column("Time", key="time", width=16)

    @property
    def selected_uid(self) -> str | None:
        """Series Instance UID under the cursor."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show_series(self, series: list[SeriesSummary], keep_uid: str | None = None) -> None:
        """Replace the rows, keeping the cursor on ``keep_uid`` when it is still there."""
        row = self.cursor_row
        self.clear()
        for s in series:
            self.add_row(
                Text("" if s.series_number is None else str(s.series_number), justify="right"),
                s.modality,
                Text(s.series_description, overflow="ellipsis", no_wrap=True),
                s.body_part_examined,
                Text(str(s.number_of_series_related_instances), justify="right"),
                format_date(s.series_date, s.series_time),
                key=s.series_instance_uid,
            )
        if not series:
            return
        target = min(row, len(series) - 1)
        if keep_uid is not None:
            with contextlib.suppress(Exception):
                target = self.get_row_index(keep_uid)
        self.move_cursor(row=target, animate=False)
