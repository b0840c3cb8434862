"""The tech desk: the day's orders with their MPPS status, the images received and the flags.

The board (:meth:`tui_pacs.services.worklist.WorklistService.board`) is read in a thread worker
and redrawn in place whenever the change feed says an instance, a study, an MPPS or an order
changed, so the cursor stays on the order the tech is looking at. Orders are created, edited
and cancelled here through the order form; from a flag, one key opens the study in the archive
screen or the order.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label, Select, Static
from textual.worker import get_current_worker

from tui_pacs.model import OrderFields, WorklistBoard, WorklistFilter, WorklistOrder
from tui_pacs.services.browse import date_range
from tui_pacs.services.worklist import WorklistService
from tui_pacs.ui.dialogs.confirm import ConfirmDialog
from tui_pacs.ui.dialogs.order_form import OrderFormDialog
from tui_pacs.ui.messages import ChangesArrived
from tui_pacs.ui.screens.base import ConsoleScreen
from tui_pacs.ui.widgets.filter_bar import DATE_PRESETS, MODALITIES
from tui_pacs.ui.widgets.worklist_table import DeskRow, WorklistTable, flag_lines

#: Change feed kinds that move the board: arrivals (ingest), MPPS and order edits.
DESK_CHANGE_KINDS = frozenset({"instance.stored", "study.created", "mpps", "order"})
#: The date presets of the desk (no custom range: the CLI lists any range).
DESK_DATES = [(label, value) for label, value in DATE_PRESETS if value != "custom"]


class DeskScreen(ConsoleScreen):
    """Orders of the day, live, with what a tech must not miss."""

    CSS_PATH = "desk.tcss"

    BINDINGS = [
        Binding("a", "new_order", "New order"),
        Binding("e", "edit_order", "Edit order"),
        Binding("c", "cancel_order", "Cancel order"),
        Binding("o", "open_study", "Open study"),
        Binding("O", "open_order", "Open order", show=False),
        Binding("A", "mark_arrived", "Arrived", show=False),
        Binding("exclamation_mark", "toggle_flagged", "Flagged only"),
        Binding("d", "cycle_date", "Date"),
        Binding("slash", "focus_filter", "Filter", show=False),
        Binding("ctrl+r", "reload", "Reload board", show=False),
        Binding("escape", "back", "Back", show=False),
    ]

    class BoardShown(Message, bubble=False):
        """The board on screen was (re)drawn."""

        def __init__(self, board: WorklistBoard, worklist_filter: WorklistFilter) -> None:
            super().__init__()
            self.board = board
            self.worklist_filter = worklist_filter

    class OrderSaved(Message, bubble=False):
        """An order was created, edited or cancelled from the desk."""

        def __init__(self, order: WorklistOrder, action: str) -> None:
            super().__init__()
            self.order = order
            self.action = action

    def __init__(self) -> None:
        super().__init__()
        self.flagged_only = False
        self.board: WorklistBoard | None = None
        self._select: str | None = None
        self._service: WorklistService | None = None

    @property
    def service(self) -> WorklistService:
        """The worklist service over the console's database."""
        if self._service is None:
            self._service = WorklistService(self.context.config)
        return self._service

    # -- layout ------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="desk-filter"):
            yield Select(DESK_DATES, value="today", allow_blank=False, id="desk-date", compact=True)
            yield Select(
                [(m, m) for m in MODALITIES], prompt="Modality", id="desk-modality", compact=True
            )
            yield Label("Station", classes="filter-label")
            yield Input(placeholder="AE title", id="desk-station", compact=True)
        yield Label("Worklist", id="desk-title", classes="section-title")
        yield WorklistTable(id="desk-orders")
        yield Static("No order selected", id="desk-detail", markup=False)

    def on_mount(self) -> None:
        self.query_one(WorklistTable).focus()
        self.load_board()

    def current_filter(self) -> WorklistFilter:
        """The filter as the fields stand."""
        preset = self.query_one("#desk-date", Select).value
        start, end = date_range(str(preset), self.context.today())
        modality = self.query_one("#desk-modality", Select).value
        return WorklistFilter(
            date_from=start,
            date_to=end,
            modality=modality if isinstance(modality, str) else "",
            station=self.query_one("#desk-station", Input).value.strip().upper(),
        )

    # -- reading ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="board", exit_on_error=False)
    def load_board(self, flt: WorklistFilter | None = None) -> None:
        """Read the board of the current filter."""
        flt = flt or self.current_filter()
        board = self.service.board(flt)
        if not get_current_worker().is_cancelled:
            self.post_message(self.BoardShown(board, flt))

    def reload(self) -> None:
        """Read the board again, on the UI thread's filter."""
        self.load_board(self.current_filter())

    @on(BoardShown)
    def _board_shown(self, message: BoardShown) -> None:
        self.board = board = message.board
        from tui_pacs.ui.widgets.worklist_table import desk_rows

        rows = desk_rows(board.orders, board.unmatched_studies)
        if self.flagged_only:
            rows = [r for r in rows if r.flagged]
        table = self.query_one(WorklistTable)
        table.show_rows(rows, select=self._select)
        self._select = None
        done = sum(1 for o in board.orders if o.order.status == "completed")
        title = f"Worklist · {len(board.orders)} orders · {done} completed"
        if board.flagged:
            title += f" · {board.flagged} flagged"
        if self.flagged_only:
            title += " · flagged only"
        self.query_one("#desk-title", Label).update(title)
        self.query_one("#desk-title", Label).set_class(bool(board.flagged), "-flagged")
        self._show_detail(table.current)

    def _show_detail(self, row: DeskRow | None) -> None:
        detail = self.query_one("#desk-detail", Static)
        if row is None:
            detail.update("No order on this board")
            return
        lines: list[str] = []
        if row.progress is not None:
            p, o = row.progress, row.progress.order
            lines.append(
                f"Order {o.id} · {o.patient_name.replace('^', ' ')} ({o.patient_id}) · "
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
                    + ", ".join(n.replace("^", " ") for n in p.received_patient_names)
                    + f" ({', '.join(p.received_patient_ids)})"
                )
        elif row.study is not None:
            s = row.study
            lines.append(
                f"Study {s.study_description or ''} · {s.patient_name.replace('^', ' ')} "
                f"({s.patient_id}) · "
                f"acc {s.accession_number or '-'} · {s.study_date}"
            )
        flags = flag_lines(row)
        if flags:
            lines.append("⚑ " + " · ".join(flags) + "  (o: open study)")
        detail.update("\n".join(lines))
        detail.set_class(bool(flags), "-flagged")

    @on(WorklistTable.RowHighlighted)
    def _row_highlighted(self, event: WorklistTable.RowHighlighted) -> None:
        self._show_detail(self.query_one(WorklistTable).current)

    @on(WorklistTable.RowSelected)
    def _row_selected(self, event: WorklistTable.RowSelected) -> None:
        row = self.query_one(WorklistTable).current
        if row is not None and row.progress is not None and not row.progress.study_instance_uids:
            self.action_open_order()
        else:
            self.action_open_study()

    def on_changes_arrived(self, message: ChangesArrived) -> None:
        if message.kinds & DESK_CHANGE_KINDS:
            self.reload()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if self.is_mounted:
            self.reload()

    @on(Input.Changed, "#desk-station")
    def _station_changed(self, event: Input.Changed) -> None:
        self.reload()

    @on(Input.Submitted, "#desk-station")
    def _station_submitted(self, event: Input.Submitted) -> None:
        self.query_one(WorklistTable).focus()

    # -- actions ---------------------------------------------------------------------------

    def action_reload(self) -> None:
        """Read the board again."""
        self.reload()

    def action_focus_filter(self) -> None:
        """Move to the station filter."""
        self.query_one("#desk-station", Input).focus()

    def action_back(self) -> None:
        """Back to the list."""
        self.query_one(WorklistTable).focus()

    def action_toggle_flagged(self) -> None:
        """Show only flagged rows, or every row."""
        self.flagged_only = not self.flagged_only
        self.reload()

    def action_cycle_date(self) -> None:
        """Next date preset (today, yesterday, last 7 days ...)."""
        select = self.query_one("#desk-date", Select)
        values = [value for _label, value in DESK_DATES]
        current = values.index(str(select.value)) if select.value in values else 0
        select.value = values[(current + 1) % len(values)]

    def _current_order(self) -> WorklistOrder | None:
        row = self.query_one(WorklistTable).current
        if row is None or row.progress is None:
            self.notify("Select an order first", severity="warning")
            return None
        return row.progress.order

    def action_new_order(self) -> None:
        """Open the order form for a new order (today, the modality filtered on)."""
        flt = self.current_filter()
        start = flt.date_from or self.context.today().strftime("%Y%m%d")
        fields = OrderFields(
            modality=flt.modality,
            scheduled_station_ae_title=flt.station,
            scheduled_procedure_step_start_date=start,
        )
        self.app.push_screen(
            OrderFormDialog("New order", self.service.create, fields),
            lambda order: self._saved(order, "created"),
        )

    def action_edit_order(self) -> None:
        """Open the order under the cursor in the form."""
        order = self._current_order()
        if order is None:
            return
        if order.cancelled:
            self.notify(f"Order {order.id} was cancelled", severity="warning")
            return
        order_id = order.id

        def save(fields: OrderFields) -> WorklistOrder:
            return self.service.edit(order_id, fields)

        self.app.push_screen(
            OrderFormDialog(f"Edit order {order_id}", save, order.fields()),
            lambda saved: self._saved(saved, "edited"),
        )

    action_open_order = action_edit_order

    def action_cancel_order(self) -> None:
        """Cancel the order under the cursor (asks first)."""
        order = self._current_order()
        if order is None:
            return
        if order.cancelled:
            self.notify(f"Order {order.id} is cancelled already", severity="warning")
            return

        def answer(confirmed: bool | None) -> None:
            if confirmed:
                self._cancel(order.id)

        self.app.push_screen(
            ConfirmDialog(
                "Cancel order?",
                f"Order {order.id} of {order.patient_name} ({order.patient_id}), "
                f"{order.modality} {order.requested_procedure_description}: it leaves the "
                "modality worklist.",
                "Cancel order",
            ),
            answer,
        )

    @work(thread=True, group="order", exit_on_error=False)
    def _cancel(self, order_id: int) -> None:
        order = self.service.cancel(order_id)
        self.app.call_from_thread(self._saved, order, "cancelled")

    @work(thread=True, group="order", exit_on_error=False)
    def action_mark_arrived(self) -> None:
        """The patient of the order under the cursor is here."""
        row = self.query_one(WorklistTable).current
        if row is None or row.progress is None:
            return
        order = self.service.mark_arrived(row.progress.order.id)
        self.app.call_from_thread(self._saved, order, "marked arrived")

    def _saved(self, order: WorklistOrder | None, action: str) -> None:
        if order is None:
            return
        self.notify(f"Order {order.id} ({order.patient_name}) {action}", title="Worklist")
        self._select = f"order:{order.id}"
        self.post_message(self.OrderSaved(order, action))
        self.reload()

    def action_open_study(self) -> None:
        """Open the study of the row under the cursor in the archive screen."""
        row = self.query_one(WorklistTable).current
        if row is None:
            return
        if row.study is not None:
            uid, patient_id = row.study.study_instance_uid, row.study.patient_id
            accession = row.study.accession_number
        else:
            assert row.progress is not None
            p = row.progress
            if not p.study_instance_uids:
                self.notify("No image received for this order yet", severity="warning")
                return
            uid = p.study_instance_uids[0]
            patient_id = p.received_patient_ids[0] if p.received_patient_ids else ""
            accession = p.order.accession_number if p.matched_by == "accession-number" else ""
        open_study(self, uid, patient_id, accession)


def open_study(screen: ConsoleScreen, uid: str, patient_id: str, accession: str) -> None:
    """Switch to the archive screen filtered to the study (its patient, any date), cursor on it.

    The archive loads its page in a worker; a short, bounded timer puts the cursor on the study
    once its row is there (the archive screen itself knows nothing of the desk).
    """
    from tui_pacs.ui.widgets.filter_bar import FilterBar
    from tui_pacs.ui.widgets.study_list import StudyList

    app = screen.app
    app.switch_mode("archive")
    archive = app.screen
    bars, lists = archive.query(FilterBar), archive.query(StudyList)
    if not bars or not lists:
        return
    studies = lists.first()
    before = studies.page
    bars.first().set_values(
        patient_name="", patient_id=patient_id, accession_number=accession,
        date_preset="any", modality="",
    )  # fmt: skip

    def place_cursor() -> None:
        if studies.page is before or studies.study_filter.patient_id != patient_id:
            return  # the page of the new filter is not drawn yet
        table = studies.table
        try:
            index = table.get_row_index(uid)
        except Exception:  # noqa: BLE001 - the row is not there yet
            return
        timer.stop()
        table.move_cursor(row=index, animate=False, scroll=True)
        table.focus()

    timer = archive.set_interval(0.05, place_cursor, repeat=100)
