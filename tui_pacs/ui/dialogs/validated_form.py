"""A modal form whose errors appear under the field they concern; it saves in a thread worker.

The node form and the order form are both this: text fields checked before saving, an inline
error under each field (and one under the form), a save that runs off the UI thread, and what
the service still refuses shown the same way. Errors that are no validation problem go to the
app's one error dialog.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static
from textual.worker import Worker, WorkerState

from tui_pacs.errors import PacsError
from tui_pacs.ui.field_keys import FIELD_NAVIGATION


def error_box(field: str) -> Static:
    """The (hidden until filled) error line of ``field`` ("form": the whole form's)."""
    return Static("", id=f"error-{field}", classes="form-error", markup=False)


class ValidatedForm[ResultT](ModalScreen[ResultT | None]):
    """A form that dismisses with what its save returned, or None when cancelled.

    Subclasses set :attr:`FIELDS`, compose their rows (:meth:`field_row`), and in
    ``action_save`` check the values, :meth:`show_errors`, then :meth:`start_save`.

    Args:
        title: The dialog's heading.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
        *FIELD_NAVIGATION,
    ]

    #: (field, label, placeholder) of the text fields, in order; the first in error gets focus.
    FIELDS: ClassVar[tuple[tuple[str, str, str], ...]] = ()

    class Invalid(Message, bubble=False):
        """The form shows these errors (field -> message; "" is the whole form)."""

        def __init__(self, errors: dict[str, str]) -> None:
            super().__init__()
            self.errors = errors

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title

    def field_row(
        self, field: str, label: str, placeholder: str, value: str, *, disabled: bool = False
    ) -> ComposeResult:
        """A labelled text input ``#field-<field>`` with its error line beneath."""
        with Horizontal(classes="form-row"):
            yield Label(label, classes="form-label")
            yield Input(
                value,
                placeholder=placeholder,
                id=f"field-{field}",
                compact=True,
                disabled=disabled,
            )
        yield error_box(field)

    def show_errors(self, errors: dict[str, str]) -> None:
        """Show each message under its field ("": under the form); clear the others."""
        for box in self.query(".form-error").results(Static):
            field = (box.id or "").removeprefix("error-")
            message = errors.get("" if field == "form" else field, "")
            box.update(message)
            box.set_class(bool(message), "-shown")
        for field, _label, _placeholder in self.FIELDS:
            self.query_one(f"#field-{field}", Input).set_class(field in errors, "-invalid")
        if errors:
            first = next((f for f, _l, _p in self.FIELDS if f in errors), None)
            if first is not None:
                self.query_one(f"#field-{first}", Input).focus()
            self.post_message(self.Invalid(dict(errors)))

    def start_save(self, save: Callable[[], ResultT]) -> None:
        """Run ``save`` in a thread worker, the Save button disabled until it fails."""
        self.query_one("#save", Button).disabled = True
        self.run_worker(save, thread=True, group="save", exit_on_error=False)

    def refused(self, error: PacsError) -> dict[str, str] | None:
        """The field errors a refused save shows (None: the error's title and message)."""
        return None

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "save":
            return
        if event.state == WorkerState.SUCCESS:
            self.dismiss(event.worker.result)
        elif event.state == WorkerState.ERROR:
            self.query_one("#save", Button).disabled = False
            error = event.worker.error
            if isinstance(error, PacsError):
                errors = self.refused(error)
                self.show_errors(errors or {"": f"{error.title}: {error.message}"})
            else:
                # Not a validation problem (the database went away ...): the one error dialog.
                show_error = getattr(self.app, "show_error", None)
                self.dismiss(None)
                if show_error is not None and error is not None:
                    show_error(error)

    def action_save(self) -> None:
        """Check every field; save when all are valid."""
        raise NotImplementedError

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
