"""A row-cursor table whose Home and End go to the first and last row, as the help says."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable


class RowTable(DataTable[str | Text]):
    """A DataTable for row cursors: Home/End move to the first/last row.

    Textual binds Home/End to the first/last *column* and keeps the rows for Ctrl+Home/End,
    which many terminals and SSH clients never send; the console's lists are read by row.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]
