"""The one error dialog: a PacsError's title and message, and its DICOM status when there is one."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui_pacs.errors import PacsError


def dicom_status(error: BaseException) -> int | None:
    """The DICOM status code an error carries, if any."""
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


class ErrorDialog(ModalScreen[None]):
    """Shows one error; Enter or Escape closes it."""

    DEFAULT_CSS = """
    ErrorDialog { align: center middle; }
    ErrorDialog > Vertical {
        width: 72; max-width: 95%; height: auto; max-height: 90%;
        border: thick $error; background: $surface; padding: 0 1;
    }
    ErrorDialog #error-title { text-style: bold; color: $error; width: 1fr; }
    ErrorDialog #error-message { margin: 1 0; }
    ErrorDialog #error-status { color: $text-muted; }
    ErrorDialog Horizontal { height: auto; align-horizontal: right; }
    """

    BINDINGS = [
        Binding("escape", "dismiss_error", "Close"),
        Binding("enter", "dismiss_error", "Close", show=False),
    ]

    def __init__(self, error: PacsError) -> None:
        super().__init__()
        self.error = error

    def compose(self) -> ComposeResult:
        status = dicom_status(self.error)
        with Vertical():
            yield Label(self.error.title, id="error-title")
            yield Static(self.error.message, id="error-message", markup=False)
            if status is not None:
                yield Label(f"DICOM status 0x{status:04X}", id="error-status")
            with Horizontal():
                yield Button("Close", variant="error", id="close")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_dismiss_error(self) -> None:
        self.dismiss(None)
