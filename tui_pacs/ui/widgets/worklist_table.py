"""The worklist table: one row per order (and per study no order claims), flags first.

Rows are keyed ``order:<id>`` and ``study:<Study Instance UID>``; redrawing with the same rows
updates the cells in place, so the cursor and the scroll position stay put while images arrive.
Flags are shown as short codes on a red (or yellow) background: named ANSI colours, so they read
the same on 16, 256 and true-colour terminals.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from rich.text import Text

from tui_pacs.model import OrderFlag, OrderProgress, OrderStatus, UnmatchedStudy
from tui_pacs.ui.widgets.row_table import RowTable

#: (short code, style, explanation) of each order flag.
FLAG_CODES: dict[OrderFlag, tuple[str, str, str]] = {
    OrderFlag.PATIENT_ID_MISMATCH: ("ID", "bold white on red", "images carry another Patient ID"),
    OrderFlag.PATIENT_NAME_MISMATCH: (
        "NAME", "bold white on red", "images carry another Patient Name",
    ),
    OrderFlag.MPPS_COUNT_MISMATCH: (
        "COUNT", "bold black on yellow", "MPPS reports another number of images than received",
    ),
    OrderFlag.COMPLETED_WITHOUT_IMAGES: (
        "NOIMG", "bold white on red", "completed by MPPS but no image received",
    ),
}  # fmt: skip
#: Code and explanation of a study that matches no order.
NO_ORDER = ("NO ORDER", "bold black on yellow", "study matches no order")
STATUS_STYLES: dict[OrderStatus, str] = {
    OrderStatus.SCHEDULED: "",
    OrderStatus.ARRIVED: "cyan",
    OrderStatus.IN_PROGRESS: "bold yellow",
    OrderStatus.COMPLETED: "bold green",
    OrderStatus.DISCONTINUED: "dim",
}
#: (key, header, width) of the columns: what a tech scans for first fits in 80 columns.
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("flags", "Flags", 9),
    ("time", "Time", 5),
    ("patient", "Patient", 16),
    ("modality", "Mod", 3),
    ("status", "Status", 11),
    ("images", "Ser/Img", 10),
    ("mpps", "MPPS", 11),
    ("patient_id", "ID", 10),
    ("accession", "Accession", 10),
    ("station", "Station", 10),
    ("procedure", "Procedure", None),
)


@dataclass(frozen=True, slots=True)
class DeskRow:
    """One row of the desk: an order with its progress, or a study no order claims."""

    key: str
    progress: OrderProgress | None = None
    study: UnmatchedStudy | None = None

    @property
    def flagged(self) -> bool:
        """True when a tech must look at it."""
        return self.study is not None or bool(self.progress and self.progress.flags)


def desk_rows(
    orders: tuple[OrderProgress, ...], studies: tuple[UnmatchedStudy, ...]
) -> list[DeskRow]:
    """The rows of a board: orders by scheduled start, then the unmatched studies."""
    rows = [DeskRow(f"order:{p.order.id}", progress=p) for p in orders]
    rows += [DeskRow(f"study:{s.study_instance_uid}", study=s) for s in studies]
    return rows


def flag_text(row: DeskRow) -> Text:
    """The flag codes of a row, each on its colour."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if row.study is not None:
        text.append(NO_ORDER[0], style=NO_ORDER[1])
        return text
    assert row.progress is not None
    for flag in row.progress.flags:
        code, style, _why = FLAG_CODES[flag]
        if text:
            text.append(" ")
        text.append(code, style=style)
    return text


def flag_lines(row: DeskRow) -> list[str]:
    """Each flag of a row, explained."""
    if row.study is not None:
        return [f"{NO_ORDER[0]}: {NO_ORDER[2]}"]
    assert row.progress is not None
    return [f"{FLAG_CODES[f][0]}: {FLAG_CODES[f][2]}" for f in row.progress.flags]


def images_text(progress: OrderProgress) -> str:
    """``series/instances`` received, then ``(n)`` when a finished MPPS reported another count
    (an MPPS in progress has not reported its images yet)."""
    text = f"{progress.series_received}/{progress.instances_received}"
    final = progress.mpps_status in ("COMPLETED", "DISCONTINUED")
    if final and progress.mpps_instances != progress.instances_received:
        text += f" ({progress.mpps_instances})"
    return text


def _time(value: str) -> str:
    return f"{value[:2]}:{value[2:4]}" if len(value) >= 4 else value


def _clip(value: str) -> Text:
    return Text(value, no_wrap=True, overflow="ellipsis")


def row_cells(row: DeskRow) -> list[str | Text]:
    """The cells of one row, in :data:`COLUMNS` order."""
    if row.study is not None:
        s = row.study
        return [
            flag_text(row),
            "",
            _clip(s.patient_name.replace("^", " ")),
            "/".join(s.modalities_in_study)[:3],
            Text("no order", style="yellow"),
            f"{s.number_of_study_related_series}/{s.number_of_study_related_instances}",
            "",
            _clip(s.patient_id),
            _clip(s.accession_number),
            "",
            _clip(s.study_description),
        ]
    assert row.progress is not None
    p = row.progress
    o = p.order
    status = Text("cancelled" if o.cancelled else str(o.status), style=STATUS_STYLES[o.status])
    return [
        flag_text(row),
        _time(o.scheduled_procedure_step_start_time),
        _clip(o.patient_name.replace("^", " ")),
        o.modality,
        status,
        images_text(p),
        p.mpps_status.lower(),
        _clip(o.patient_id),
        _clip(o.accession_number),
        _clip(o.scheduled_station_ae_title),
        _clip(o.requested_procedure_description or o.scheduled_procedure_step_description),
    ]


class WorklistTable(RowTable):
    """The desk's rows; the cursor stays on the same order across live updates."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.desk_rows: dict[str, DeskRow] = {}

    def on_mount(self) -> None:
        for key, header, width in COLUMNS:
            self.add_column(header, key=key, width=width)

    def cursor_key(self) -> str | None:
        """The key of the row under the cursor."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    @property
    def current(self) -> DeskRow | None:
        """The row under the cursor."""
        key = self.cursor_key()
        return self.desk_rows.get(key) if key is not None else None

    def shown_keys(self) -> list[str]:
        """The keys of the rows, in screen order."""
        return [str(row.key.value) for row in self.ordered_rows]

    def show_rows(self, rows: list[DeskRow], select: str | None = None) -> None:
        """Show ``rows``, keeping cursor and scroll (or moving to ``select`` when shown).

        A live update touches only what changed: the cells of changed rows, new rows added,
        gone rows removed, and the rows put in order in place (a table cleared and filled
        again measures every cell of every row, which held the UI thread for ~50 ms per
        redraw on a day of 300 orders).
        """
        keys = [r.key for r in rows]
        shown = self.shown_keys()
        keep = select or self.cursor_key()
        previous = self.desk_rows
        self.desk_rows = {r.key: r for r in rows}
        gone = set(shown) - self.desk_rows.keys()
        if not shown or not rows or len(gone) > len(shown) // 2:
            self._fill(rows, keep)
            return
        for key in gone:
            self.remove_row(key)
        for row in rows:
            before = previous.get(row.key)
            if before is None:
                self.add_row(*row_cells(row), key=row.key)
            elif before != row:
                for (column, _h, _w), cell in zip(COLUMNS, row_cells(row), strict=True):
                    self.update_cell(row.key, column, cell)
        if self.shown_keys() != keys:
            # The flags cell of each row is its own object: it says where the row goes.
            where = {id(self.get_cell(key, "flags")): n for n, key in enumerate(keys)}
            self.sort("flags", key=lambda cell: where[id(cell)])
        if keys == shown:
            if select is not None and select in self.desk_rows:
                self.move_cursor(row=self.get_row_index(select), animate=False)
            return
        target = min(self.cursor_row, len(rows) - 1)
        if keep is not None and keep in self.desk_rows:
            target = self.get_row_index(keep)
        self.move_cursor(row=target, animate=False, scroll=True)

    def _fill(self, rows: list[DeskRow], keep: str | None) -> None:
        """Clear the table and add ``rows`` (first board, or a board mostly different)."""
        position, scroll_y = self.cursor_row, self.scroll_y
        self.clear()
        for row in rows:
            self.add_row(*row_cells(row), key=row.key)
        if not rows:
            return
        target = min(position, len(rows) - 1)
        if keep is not None:
            with contextlib.suppress(Exception):
                target = self.get_row_index(keep)
        self.scroll_to(y=scroll_y, animate=False, immediate=True)
        self.move_cursor(row=target, animate=False, scroll=True)
