"""The worklist pane: the day's orders with their MPPS status, the images received and the flags.

One widget serves both places the tech looks: a compact pane above the archive's study list
(a few rows, flagged rows first, hidden until there are orders today) and the full-size desk
screen (date, modality and station filters, every row in scheduled order, the selected order
explained below). The board (:meth:`tui_pacs.services.worklist.WorklistService.board`) is read
in a thread worker and redrawn in place whenever the screen hands it a change-feed batch that
touches orders, MPPS or arrivals, so the cursor stays on the order the tech is looking at.

From any row, ``o`` asks the screen to show the study (:class:`WorklistPane.OpenStudy`) and
``O`` opens the order in the order form.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Select, Static
from textual.worker import get_current_worker

from tui_pacs.config import Config
from tui_pacs.model import OrderFields, WorklistBoard, WorklistFilter, WorklistOrder
from tui_pacs.services.browse import date_range
from tui_pacs.ui.widgets.filter_bar import DATE_PRESETS, MODALITIES
from tui_pacs.ui.widgets.worklist_table import DeskRow, WorklistTable, desk_rows, flag_lines

if TYPE_CHECKING:
    from tui_pacs.services.worklist import WorklistService

#: Change feed kinds that move the board: arrivals (ingest), MPPS and order edits.
DESK_CHANGE_KINDS = frozenset({"instance.stored", "study.created", "mpps", "order"})
#: The date presets of the full-size pane (no custom range: the CLI lists any range).
DESK_DATES = [(label, value) for label, value in DATE_PRESETS if value != "custom"]
#: Rows the compact pane shows at most: a fifth of the terminal, 3 to 12.
COMPACT_MIN_ROWS, COMPACT_MAX_ROWS = 3, 12


def compact_rows(terminal_height: int) -> int:
    """How many orders the compact pane shows on a terminal this high."""
    return max(COMPACT_MIN_ROWS, min(COMPACT_MAX_ROWS, terminal_height // 5))


class WorklistPane(Vertical):
    """Orders of the day, live, with what a tech must not miss.

    Args:
        config: Where the index is (the board is read through the worklist service).
        today: Gives the console's day ("today" is read again at every load).
        full: The desk screen's full-size pane (date filter, every row by time, details);
            otherwise the compact pane (today, flagged rows first, a one-line hint), hidden
            until a board with orders arrives unless :meth:`set_shown` decided otherwise.
    """

    #: Where the help screen lists this widget's keys.
    HELP_WHERE = "Worklist"

    DEFAULT_CSS = """
    WorklistPane { height: auto; }
    WorklistPane .wl-bar { height: 1; }
    WorklistPane .wl-bar Select { width: 14; margin-left: 1; }
    WorklistPane #wl-station { width: 12; margin-left: 1; }
    WorklistPane #wl-title {
        width: 1fr; height: 1; padding: 0 1;
        background: $primary-background; color: $text; text-style: bold;
    }
    WorklistPane #wl-title.-flagged { background: $error-darken-2; }
    WorklistPane.-full #wl-filter { padding: 0 1; }
    WorklistPane.-full #wl-date { width: 18; margin-left: 0; }
    WorklistPane.-full #wl-orders { height: 1fr; }
    /* Compact: the columns past the terminal's edge are the ones a glance can do without. */
    WorklistPane #wl-orders { scrollbar-size-horizontal: 0; }
    WorklistPane.-full #wl-orders, WorklistPane.-large #wl-orders { scrollbar-size-horizontal: 1; }
    WorklistPane #wl-detail { height: 1; padding: 0 1; background: $surface; }
    WorklistPane #wl-detail.-flagged { color: $text-error; }
    WorklistPane.-full #wl-detail {
        height: auto; min-height: 3; max-height: 6; border-top: hkey $primary; color: $text;
    }
    WorklistPane.-full #wl-detail.-flagged { border-top: hkey $error; }
    """

    BINDINGS = [
        Binding("o", "open_study", "Open study"),
        Binding("O", "open_order", "Open order"),
        Binding("exclamation_mark", "toggle_flagged", "Flagged only"),
    ]

    class BoardShown(Message):
        """The board on screen was (re)drawn."""

        def __init__(self, board: WorklistBoard, worklist_filter: WorklistFilter) -> None:
            super().__init__()
            self.board = board
            self.worklist_filter = worklist_filter

    class OpenStudy(Message):
        """Show this study in the archive screen's study list."""

        def __init__(self, study_instance_uid: str, patient_id: str, accession_number: str) -> None:
            super().__init__()
            self.study_instance_uid = study_instance_uid
            self.patient_id = patient_id
            self.accession_number = accession_number

    class OrderSaved(Message):
        """An order was created, edited or cancelled from the pane's screen."""

        def __init__(self, order: WorklistOrder, action: str) -> None:
            super().__init__()
            self.order = order
            self.action = action

    class _BoardLoaded(Message):
        def __init__(self, board: WorklistBoard, worklist_filter: WorklistFilter) -> None:
            super().__init__()
            self.board = board
            self.worklist_filter = worklist_filter

    def __init__(
        self, config: Config, today: Callable[[], date], *, full: bool = False, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.config = config
        self.today = today
        self.full = full
        self.flagged_only = False
        self.board: WorklistBoard | None = None
        self.max_rows = COMPACT_MAX_ROWS
        #: Shown or hidden by the person (None: shown once there are orders).
        self.shown_by_choice: bool | None = None
        self._select: str | None = None
        self._service: WorklistService | None = None
        #: The filter of the last board asked for.
        self._requested: WorklistFilter | None = None
        #: Changes arrived while the pane's screen was not on screen (another mode's).
        self._stale = False
        #: What the title and the detail line show (redrawn only when it changes).
        self._texts: dict[str, str] = {}

    @property
    def service(self) -> WorklistService:
        """The worklist service over the console's database (imported on first use)."""
        if self._service is None:
            from tui_pacs.services.worklist import WorklistService

            self._service = WorklistService(self.config)
        return self._service

    @property
    def table(self) -> WorklistTable:
        """The rows."""
        return self.query_one(WorklistTable)

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        modality = Select(
            [(m, m) for m in MODALITIES], prompt="Modality", id="wl-modality", compact=True
        )
        station = Input(placeholder="Station AE", id="wl-station", compact=True)
        if self.full:
            with Horizontal(id="wl-filter", classes="wl-bar"):
                yield Select(DESK_DATES, value="today", allow_blank=False, id="wl-date",
                             compact=True)  # fmt: skip
                yield modality
                yield station
            yield Label("Worklist", id="wl-title")
        else:
            with Horizontal(classes="wl-bar"):
                yield Label("Worklist · today", id="wl-title")
                yield modality
                yield station
        yield WorklistTable(id="wl-orders")
        yield Static("", id="wl-detail", markup=False)

    def on_mount(self) -> None:
        self.set_class(self.full, "-full")
        if not self.full:
            self.display = False
        self.app.screen_change_signal.subscribe(self, self._screen_changed)
        self.reload()

    def set_shown(self, shown: bool) -> None:
        """Show or hide the pane, as the person chose (automatic showing stops)."""
        self.shown_by_choice = shown
        self.display = shown
        if shown:
            self.reload()

    def fit(self, terminal_height: int) -> None:
        """Size the compact pane's list for a terminal this high."""
        self.max_rows = compact_rows(terminal_height)
        self._fit_table()

    def _fit_table(self) -> None:
        if self.full or self.has_class("-large"):
            self.table.styles.height = "1fr"
            return
        rows = self.table.row_count
        self.table.styles.height = max(1, min(rows, self.max_rows)) + 1

    def focus_list(self) -> None:
        """Put the cursor in the list."""
        self.table.focus()

    def current_filter(self) -> WorklistFilter:
        """The filter as the fields stand."""
        preset = "today"
        if self.full:
            preset = str(self.query_one("#wl-date", Select).value)
        start, end = date_range(preset, self.today())
        modality = self.query_one("#wl-modality", Select).value
        return WorklistFilter(
            date_from=start,
            date_to=end,
            modality=modality if isinstance(modality, str) else "",
            station=self.query_one("#wl-station", Input).value.strip().upper(),
        )

    # -- reading ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="worklist-board", exit_on_error=False)
    def load_board(self, flt: WorklistFilter) -> None:
        """Read the board of ``flt``."""
        board = self.service.board(flt)
        if not get_current_worker().is_cancelled:
            self.post_message(self._BoardLoaded(board, flt))

    def reload(self, select: str | None = None) -> None:
        """Read the board again, on the fields' filter (``select``: the row to put the cursor
        on, ``order:<id>`` or ``study:<uid>``)."""
        if select is not None:
            self._select = select
        if self.shown_by_choice is False:
            return  # hidden by the person: read again when shown
        self._requested = self.current_filter()
        self.load_board(self._requested)

    def _filter_changed(self) -> None:
        """A filter field changed: read the board unless it is being read for these values
        already (the date select announces its first value once mounted)."""
        if self.is_mounted and self.current_filter() != self._requested:
            self.reload()

    def changes_arrived(self, kinds: frozenset[str]) -> None:
        """The screen's change-feed batch: read the board again if it moved (once the pane's
        screen is back on screen, when it is another mode's screen for now)."""
        if not kinds & DESK_CHANGE_KINDS:
            return
        if self.screen not in self.app.screen_stack:
            self._stale = True
            return
        self.reload()

    def _screen_changed(self, screen: object) -> None:
        if self._stale and self.is_attached and self.screen in self.app.screen_stack:
            self._stale = False
            self.reload()

    @on(_BoardLoaded)
    def _board_loaded(self, message: _BoardLoaded) -> None:
        message.stop()
        if message.worklist_filter != self.current_filter():
            return  # read for fields that have changed since
        self.board = board = message.board
        rows = desk_rows(board.orders, board.unmatched_studies)
        if not self.full:
            rows.sort(key=lambda r: not r.flagged)  # stable: by time within each group
        if self.flagged_only:
            rows = [r for r in rows if r.flagged]
        table = self.table
        table.show_rows(rows, select=self._select)
        self._select = None
        self._fit_table()
        self._title(board)
        self._show_detail(table.current)
        if self.shown_by_choice is None and board.orders and not self.display:
            self.display = True
        self.post_message(self.BoardShown(board, message.worklist_filter))

    def _title(self, board: WorklistBoard) -> None:
        done = sum(1 for o in board.orders if o.order.status == "completed")
        title = f"Worklist · {len(board.orders)} orders · {done} completed"
        if not self.full:
            title = f"Worklist today · {len(board.orders)} orders · {done} done"
        if board.flagged:
            title += f" · ⚑ {board.flagged} flagged"
        if self.flagged_only:
            title += " · flagged only"
        label = self.query_one("#wl-title", Label)
        self._update(label, title)
        label.set_class(bool(board.flagged), "-flagged")

    def _update(self, widget: Static, text: str) -> None:
        """Change a line's text (untouched when the same: an update lays the screen out)."""
        if self._texts.get(widget.id or "") != text:
            self._texts[widget.id or ""] = text
            widget.update(text)

    def _show_detail(self, row: DeskRow | None) -> None:
        detail = self.query_one("#wl-detail", Static)
        flags = flag_lines(row) if row is not None else []
        detail.set_class(bool(flags), "-flagged")
        if not self.full:
            if row is None:
                self._update(detail, "No order today" if self.board else "")
            elif flags:
                self._update(detail, "⚑ " + " · ".join(flags) + " · o: study, O: order")
            else:
                self._update(detail, _summary(row))
            return
        if row is None:
            self._update(detail, "No order on this board")
            return
        lines = _details(row)
        if flags:
            lines.append("⚑ " + " · ".join(flags) + "  (o: open study, O: open order)")
        self._update(detail, "\n".join(lines))

    @on(WorklistTable.RowHighlighted)
    def _row_highlighted(self, event: WorklistTable.RowHighlighted) -> None:
        self._show_detail(self.table.current)

    @on(WorklistTable.RowSelected)
    def _row_selected(self, event: WorklistTable.RowSelected) -> None:
        event.stop()
        row = self.table.current
        if row is not None and row.progress is not None and not row.progress.study_instance_uids:
            self.action_open_order()
        else:
            self.action_open_study()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._filter_changed()

    @on(Input.Changed, "#wl-station")
    def _station_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._filter_changed()

    @on(Input.Submitted, "#wl-station")
    def _station_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.table.focus()

    # -- actions ---------------------------------------------------------------------------

    def action_toggle_flagged(self) -> None:
        """Show only flagged rows, or every row."""
        self.flagged_only = not self.flagged_only
        self.reload()

    def current_order(self) -> WorklistOrder | None:
        """The order under the cursor (a warning when the row is a study or there is none)."""
        row = self.table.current
        if row is None or row.progress is None:
            self.notify("Select an order first", severity="warning")
            return None
        return row.progress.order

    def action_open_study(self) -> None:
        """Show the study of the row under the cursor in the archive screen."""
        row = self.table.current
        if row is None:
            return
        if row.study is not None:
            s = row.study
            self.post_message(self.OpenStudy(s.study_instance_uid, s.patient_id, ""))
            return
        assert row.progress is not None
        p = row.progress
        if not p.study_instance_uids:
            self.notify("No image received for this order yet", severity="warning")
            return
        patient_id = p.received_patient_ids[0] if p.received_patient_ids else ""
        accession = p.order.accession_number if p.matched_by == "accession-number" else ""
        self.post_message(self.OpenStudy(p.study_instance_uids[0], patient_id, accession))

    def action_open_order(self) -> None:
        """Open the order under the cursor in the order form."""
        order = self.current_order()
        if order is None:
            return
        if order.cancelled:
            self.notify(f"Order {order.id} was cancelled", severity="warning")
            return
        from tui_pacs.ui.dialogs.order_form import OrderFormDialog

        order_id, service = order.id, self.service

        def save(fields: OrderFields) -> WorklistOrder:
            return service.edit(order_id, fields)

        self.app.push_screen(
            OrderFormDialog(f"Edit order {order_id}", save, order.fields()),
            lambda saved: self.order_saved(saved, "edited"),
        )

    def order_saved(self, order: WorklistOrder | None, action: str) -> None:
        """Tell the person, put the cursor on the order, and read the board again."""
        if order is None:
            return
        self.notify(f"Order {order.id} ({order.patient_name}) {action}", title="Worklist")
        self.post_message(self.OrderSaved(order, action))
        self.reload(select=f"order:{order.id}")


def _name(value: str) -> str:
    return value.replace("^", " ").strip()


def _summary(row: DeskRow) -> str:
    """One line about a row without flags (the compact pane's hint)."""
    if row.progress is None:
        return ""
    p, o = row.progress, row.progress.order
    text = f"{_name(o.patient_name)} · {o.modality} {o.requested_procedure_description}".rstrip()
    text += f" · {p.series_received} series, {p.instances_received} images"
    if p.mpps_status:
        text += f" · MPPS {p.mpps_status.lower()}"
    return text + (" · o: study" if p.study_instance_uids else " · O: order")


def _details(row: DeskRow) -> list[str]:
    """What the full-size pane says about a row, line by line."""
    lines: list[str] = []
    if row.progress is not None:
        p, o = row.progress, row.progress.order
        lines.append(
            f"Order {o.id} · {_name(o.patient_name)} ({o.patient_id}) · "
            f"acc {o.accession_number} · "
            f"SPS {o.scheduled_procedure_step_id} · {o.modality} @ "
            f"{o.scheduled_station_ae_title or '-'}"
        )
        received = f"{p.series_received} series, {p.instances_received} images"
        if p.matched_by:
            received += f" (by {p.matched_by.replace('-', ' ')})"
        mpps = (
            f"MPPS {p.mpps_status.lower()}, {p.mpps_instances} images"
            if p.mpps_status
            else "no MPPS"
        )
        lines.append(f"Received: {received} · {mpps}")
        if p.received_patient_ids or p.received_patient_names:
            lines.append(
                "In the images: "
                + ", ".join(_name(n) for n in p.received_patient_names)
                + f" ({', '.join(p.received_patient_ids)})"
            )
    elif row.study is not None:
        s = row.study
        lines.append(
            f"Study {s.study_description or ''} · {_name(s.patient_name)} ({s.patient_id}) · "
            f"acc {s.accession_number or '-'} · {s.study_date}"
        )
    return lines
