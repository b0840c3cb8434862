"""Create or edit an order: a validated form; each error appears under the field it concerns.

The form checks every field as the worklist service will
(:func:`tui_pacs.services.worklist.field_errors`) before it saves; the save runs in a thread
worker, and what the service still refuses comes back under the form.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static
from textual.worker import Worker, WorkerState

from tui_pacs.errors import InvalidOrderError, PacsError
from tui_pacs.model import OrderFields, WorklistOrder

#: (field, label, placeholder) of every field, in the form's order.
ORDER_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("patient_name", "Patient name", "FAMILY^Given (required)"),
    ("patient_id", "Patient ID", "required"),
    ("patient_birth_date", "Birth date", "YYYYMMDD"),
    ("patient_sex", "Sex", "M, F or O"),
    ("accession_number", "Accession", "up to 16 characters"),
    ("modality", "Modality", "CT, MR, US … (required)"),
    ("scheduled_procedure_step_start_date", "Date", "YYYYMMDD (required)"),
    ("scheduled_procedure_step_start_time", "Time", "HH:MM"),
    ("scheduled_station_ae_title", "Station AE", "the modality's AE title"),
    ("scheduled_station_name", "Station name", "optional"),
    ("requested_procedure_id", "Procedure ID", "optional"),
    ("requested_procedure_description", "Procedure", "description"),
    ("requested_procedure_code_value", "Code value", "optional"),
    ("requested_procedure_coding_scheme_designator", "Code scheme", "e.g. LN"),
    ("requested_procedure_code_meaning", "Code meaning", "optional"),
    ("scheduled_procedure_step_id", "SPS ID", "assigned when empty"),
    ("scheduled_procedure_step_description", "Step", "description"),
    ("scheduled_performing_physician_name", "Physician", "FAMILY^Given"),
    ("study_instance_uid", "Study UID", "assigned when empty"),
)


def check_fields(fields: OrderFields) -> dict[str, str]:
    """Field errors as the worklist service reports them (imported on first use)."""
    from tui_pacs.services.worklist import field_errors

    return field_errors(fields)


class OrderFormDialog(ModalScreen[WorklistOrder | None]):
    """The order form; dismisses with the saved order, or None when cancelled.

    Args:
        title: The dialog's heading ("New order", "Edit order 12").
        save: Stores the order (the service's create or edit); raises what the service raises.
        fields: Values to start from (an order being edited, or today's defaults).
    """

    DEFAULT_CSS = """
    OrderFormDialog { align: center middle; }
    OrderFormDialog > Vertical {
        width: 76; max-width: 100%; height: 100%; max-height: 44;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    OrderFormDialog #form-title { text-style: bold; width: 1fr; }
    OrderFormDialog #form-fields { height: 1fr; }
    OrderFormDialog .form-row { height: 1; }
    OrderFormDialog .form-label { width: 14; color: $text-muted; }
    OrderFormDialog .form-row Input { width: 1fr; }
    OrderFormDialog .form-error { color: $error; padding-left: 14; display: none; }
    OrderFormDialog .form-error.-shown { display: block; }
    OrderFormDialog #form-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    OrderFormDialog #form-buttons Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
    ]

    class Invalid(Message, bubble=False):
        """The form shows these errors (field -> message; "" is the whole form)."""

        def __init__(self, errors: dict[str, str]) -> None:
            super().__init__()
            self.errors = errors

    def __init__(
        self,
        title: str,
        save: Callable[[OrderFields], WorklistOrder],
        fields: OrderFields | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.save = save
        self.initial = fields or OrderFields()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="form-title")
            with VerticalScroll(id="form-fields"):
                for field, label, placeholder in ORDER_FIELDS:
                    with Horizontal(classes="form-row"):
                        yield Label(label, classes="form-label")
                        yield Input(
                            getattr(self.initial, field),
                            placeholder=placeholder,
                            id=f"field-{field}",
                            compact=True,
                        )
                    yield Static("", id=f"error-{field}", classes="form-error", markup=False)
            yield Static("", id="error-form", classes="form-error", markup=False)
            with Horizontal(id="form-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Save", variant="primary", id="save", compact=True)

    def on_mount(self) -> None:
        self.query_one("#field-patient_name", Input).focus()

    def values(self) -> OrderFields:
        """The fields as typed."""
        return OrderFields(
            **{f: self.query_one(f"#field-{f}", Input).value for f, _l, _p in ORDER_FIELDS}
        )

    def show_errors(self, errors: dict[str, str]) -> None:
        """Show each message under its field ("": under the form); clear the others."""
        for box in self.query(".form-error").results(Static):
            field = (box.id or "").removeprefix("error-")
            message = errors.get("" if field == "form" else field, "")
            box.update(message)
            box.set_class(bool(message), "-shown")
        for field, _label, _placeholder in ORDER_FIELDS:
            self.query_one(f"#field-{field}", Input).set_class(field in errors, "-invalid")
        if errors:
            first = next((f for f, _l, _p in ORDER_FIELDS if f in errors), None)
            if first is not None:
                self.query_one(f"#field-{first}", Input).focus()
            self.post_message(self.Invalid(dict(errors)))

    def action_save(self) -> None:
        """Check every field; save when all are valid."""
        fields = self.values()
        errors = check_fields(fields)
        self.show_errors(errors)
        if errors:
            return
        self.query_one("#save", Button).disabled = True
        self.run_worker(lambda: self.save(fields), thread=True, group="save", exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "save":
            return
        if event.state == WorkerState.SUCCESS:
            self.dismiss(event.worker.result)
        elif event.state == WorkerState.ERROR:
            self.query_one("#save", Button).disabled = False
            error = event.worker.error
            if isinstance(error, InvalidOrderError) and error.field_errors:
                self.show_errors(dict(error.field_errors))
            elif isinstance(error, PacsError):
                self.show_errors({"": f"{error.title}: {error.message}"})
            else:
                show_error = getattr(self.app, "show_error", None)
                self.dismiss(None)
                if show_error is not None and error is not None:
                    show_error(error)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without saving."""
        self.dismiss(None)
