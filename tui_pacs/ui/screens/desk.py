"""The tech desk: the worklist pane full size, with the keys that create, edit and cancel orders.

The pane (:class:`~tui_pacs.ui.widgets.worklist_pane.WorklistPane`) is the same widget the
archive screen shows compact above its study list: it reads the board in a thread worker, redraws
it in place on change-feed batches, and from a flag opens the study (shown in the archive
screen's own study list) or the order. This screen adds the date filter and the order keys.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Select

from tui_pacs.model import OrderFields, WorklistBoard, WorklistOrder
from tui_pacs.ui.dialogs.confirm import ConfirmDialog
from tui_pacs.ui.dialogs.order_form import OrderFormDialog
from tui_pacs.ui.messages import ChangesArrived
from tui_pacs.ui.screens.base import ConsoleScreen
from tui_pacs.ui.widgets.worklist_pane import DESK_CHANGE_KINDS, DESK_DATES, WorklistPane

__all__ = ["DESK_CHANGE_KINDS", "DeskScreen"]


class DeskScreen(ConsoleScreen):
    """Orders of the day, live, with what a tech must not miss."""

    CSS_PATH = "desk.tcss"

    BINDINGS = [
        Binding("a", "new_order", "New order"),
        Binding("e", "edit_order", "Edit order"),
        Binding("c", "cancel_order", "Cancel order"),
        Binding("A", "mark_arrived", "Arrived", show=False),
        Binding("d", "cycle_date", "Date"),
        Binding("slash", "focus_filter", "Filter", show=False),
        Binding("ctrl+r", "reload", "Reload board", show=False),
        Binding("escape", "back", "Back", show=False),
    ]

    #: Re-exported: what the pane posts (tests wait for them).
    BoardShown = WorklistPane.BoardShown
    OrderSaved = WorklistPane.OrderSaved

    # -- layout ------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        yield WorklistPane(self.context.config, self.context.today, full=True, id="desk-pane")

    def on_mount(self) -> None:
        self.pane.focus_list()

    @property
    def pane(self) -> WorklistPane:
        """The worklist pane."""
        return self.query_one(WorklistPane)

    @property
    def board(self) -> WorklistBoard | None:
        """The board on screen."""
        return self.pane.board

    def on_changes_arrived(self, message: ChangesArrived) -> None:
        self.pane.changes_arrived(message.kinds)

    @on(WorklistPane.OpenStudy)
    def _open_study(self, message: WorklistPane.OpenStudy) -> None:
        from tui_pacs.ui.screens.archive import ArchiveScreen

        self.app.switch_mode("archive")
        archive = self.app.screen
        if isinstance(archive, ArchiveScreen):
            archive.show_study(
                message.study_instance_uid,
                patient_id=message.patient_id,
                accession_number=message.accession_number,
            )

    # -- actions ---------------------------------------------------------------------------

    def action_reload(self) -> None:
        """Read the board again."""
        self.pane.reload()

    def action_focus_filter(self) -> None:
        """Move to the station filter."""
        self.query_one("#wl-station", Input).focus()

    def action_back(self) -> None:
        """Back to the list."""
        self.pane.focus_list()

    def action_cycle_date(self) -> None:
        """Next date preset (today, yesterday, last 7 days ...)."""
        select = self.query_one("#wl-date", Select)
        values = [value for _label, value in DESK_DATES]
        current = values.index(str(select.value)) if select.value in values else 0
        select.value = values[(current + 1) % len(values)]

    def action_new_order(self) -> None:
        """Open the order form for a new order (the day, modality and station filtered on)."""
        pane = self.pane
        flt = pane.current_filter()
        start = flt.date_from or self.context.today().strftime("%Y%m%d")
        fields = OrderFields(
            modality=flt.modality,
            scheduled_station_ae_title=flt.station,
            scheduled_procedure_step_start_date=start,
        )
        self.app.push_screen(
            OrderFormDialog("New order", pane.service.create, fields),
            lambda order: pane.order_saved(order, "created"),
        )

    def action_edit_order(self) -> None:
        """Open the order under the cursor in the form."""
        self.pane.action_open_order()

    def action_cancel_order(self) -> None:
        """Cancel the order under the cursor (asks first)."""
        order = self.pane.current_order()
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
        order = self.pane.service.cancel(order_id)
        self.app.call_from_thread(self._saved, order, "cancelled")

    def action_mark_arrived(self) -> None:
        """The patient of the order under the cursor is here."""
        order = self.pane.current_order()
        if order is not None:
            self._mark_arrived(order.id)

    @work(thread=True, group="order", exit_on_error=False)
    def _mark_arrived(self, order_id: int) -> None:
        order = self.pane.service.mark_arrived(order_id)
        self.app.call_from_thread(self._saved, order, "marked arrived")

    def _saved(self, order: WorklistOrder | None, action: str) -> None:
        self.pane.order_saved(order, action)
