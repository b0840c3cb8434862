"""Create or edit an order: a validated form; each error appears under the field it concerns.

The form checks every field as the worklist service will
(:func:`tui_pacs.services.worklist.field_errors`) before it saves; the save runs in a thread
worker, and what the service still refuses comes back under the form.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label

from tui_pacs.errors import InvalidOrderError, PacsError
from tui_pacs.model import OrderFields, WorklistOrder
from tui_pacs.ui.dialogs.validated_form import ValidatedForm, error_box

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


class OrderFormDialog(ValidatedForm[WorklistOrder]):
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

    FIELDS = ORDER_FIELDS

    class Invalid(ValidatedForm.Invalid):
        """The order form shows these errors (field -> message; "" is the whole form)."""

    def __init__(
        self,
        title: str,
        save: Callable[[OrderFields], WorklistOrder],
        fields: OrderFields | None = None,
    ) -> None:
        super().__init__(title)
        self.save = save
        self.initial = fields or OrderFields()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="form-title")
            with VerticalScroll(id="form-fields"):
                for field, label, placeholder in ORDER_FIELDS:
                    yield from self.field_row(
                        field, label, placeholder, getattr(self.initial, field)
                    )
            yield error_box("form")
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

    def action_save(self) -> None:
        """Check every field; save when all are valid."""
        fields = self.values()
        errors = check_fields(fields)
        self.show_errors(errors)
        if errors:
            return
        self.start_save(lambda: self.save(fields))

    def refused(self, error: PacsError) -> dict[str, str] | None:
        """The service's field errors under their fields."""
        if isinstance(error, InvalidOrderError) and error.field_errors:
            return dict(error.field_errors)
        return None
