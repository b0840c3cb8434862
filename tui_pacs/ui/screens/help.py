"""The help screen: every key of the console, the screen it came from, and what it does."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import DataTable, Label, Static

from tui_pacs.ui.widgets.row_table import RowTable


def binding_rows(screen: Screen[object]) -> list[tuple[str, str, str]]:
    """(keys, description, where) of every binding of the app, of ``screen`` and of its
    widgets that name a ``HELP_WHERE`` (a pane with keys of its own, like the worklist)."""
    app = screen.app
    rows: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for where, bindings in (
        (screen.__class__.__name__.removesuffix("Screen") or "Screen", screen.BINDINGS),
        *help_widget_bindings(screen),
        ("Everywhere", app.BINDINGS),
    ):
        for item in bindings:
            binding = _as_binding(item)
            if binding is None or not binding.description:
                continue
            key = (binding.action, where)
            if key in seen:
                continue
            seen.add(key)
            keys = ", ".join(
                app.get_key_display(Binding(k.strip(), binding.action))
                for k in binding.key.split(",")
            )
            rows.append((keys, binding.description, where))
    return rows


def help_widgets(screen: Screen[object]) -> list[Widget]:
    """The widgets of ``screen`` whose keys the help lists (one per class)."""
    found: dict[type, Widget] = {}
    for widget in screen.walk_children(Widget):
        if getattr(widget, "HELP_WHERE", "") and type(widget) not in found:
            found[type(widget)] = widget
    return list(found.values())


def help_widget_bindings(screen: Screen[object]) -> list[tuple[str, list[BindingType]]]:
    """(where, bindings) of the widgets :func:`help_widgets` finds."""
    return [(str(getattr(w, "HELP_WHERE", "")), list(w.BINDINGS)) for w in help_widgets(screen)]


def _as_binding(item: BindingType) -> Binding | None:
    if isinstance(item, Binding):
        return item
    if isinstance(item, tuple) and len(item) >= 2:
        return Binding(item[0], item[1], item[2] if len(item) > 2 else "")
    return None


class HelpScreen(ModalScreen[None]):
    """Lists the keys; Escape or ``?`` closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 90; max-width: 100%; height: 90%; border: thick $primary; background: $surface;
    }
    HelpScreen #help-title { width: 1fr; text-style: bold; padding: 0 1; }
    HelpScreen #help-notes { padding: 0 1; color: $text-muted; }
    HelpScreen DataTable { height: 1fr; }
    """

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Keys", id="help-title")
            yield Static(
                "Arrows, PgUp/PgDn, Home/End move in lists and trees; Tab moves between fields; "
                "Enter opens (a study or series: in the viewer); Ctrl+P finds any action by name. "
                "Escape or ? closes this list.",
                id="help-notes",
            )
            yield RowTable(cursor_type="row", zebra_stripes=True, id="help-keys")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Key", "Action", "Where")
        for keys, description, where in self.rows:
            table.add_row(Text(keys, style="bold"), description, where)
        table.focus()

    def action_close(self) -> None:
        """Back to the screen underneath."""
        self.dismiss(None)
