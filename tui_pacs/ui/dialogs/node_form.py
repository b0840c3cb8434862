"""Add or edit a remote node: a validated form; errors appear under the field they concern.

The form checks every field as the registry will (:func:`tui_pacs.services.nodes.field_errors`)
before it saves; the save itself runs in a thread worker, and what the registry still refuses
(a name already taken ...) comes back under its field too. Nodes from the config file open
read-only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from tui_pacs.errors import PacsError, UnknownNodeError
from tui_pacs.model import ALL_SERVICES, DimseService, NodeSource, RemoteNode
from tui_pacs.services.nodes import DuplicateNodeError, NodeRegistryError, field_errors
from tui_pacs.ui.dialogs.validated_form import ValidatedForm, error_box

#: (field, label, placeholder) of the text fields, in order.
TEXT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("name", "Name", "how you call it, e.g. hospital-pacs"),
    ("ae_title", "AE title", "e.g. HOSP_PACS"),
    ("host", "Host", "name or address"),
    ("port", "Port", "e.g. 104"),
    ("description", "Description", "optional"),
)
METHODS = [("C-MOVE (to this node)", "move"), ("C-GET", "get")]
_FIELD_IN_MESSAGE = re.compile(
    r"\.(name|ae_title|host|port|description|allowed_services|"
    r"retrieve_method): "
)


class NodeFormDialog(ValidatedForm[RemoteNode]):
    """The node form; dismisses with the saved node, or None when cancelled.

    Args:
        title: The dialog's heading ("Add node", "Edit node X").
        save: Stores the node (the registry's add or edit); raises what the registry raises.
        node: The node to edit (None: a new node).
        config_file: Where config nodes live (shown for a read-only node).
    """

    DEFAULT_CSS = """
    NodeFormDialog { align: center middle; }
    NodeFormDialog > Vertical {
        width: 72; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    NodeFormDialog #form-title { text-style: bold; width: 1fr; margin-bottom: 1; }
    NodeFormDialog .form-row { height: 1; }
    NodeFormDialog .form-label { width: 13; color: $text-muted; }
    NodeFormDialog .form-row Input { width: 1fr; }
    NodeFormDialog #field-port { width: 8; }
    NodeFormDialog #field-ae_title { width: 18; }
    NodeFormDialog .form-error { color: $error; padding-left: 13; display: none; }
    NodeFormDialog .form-error.-shown { display: block; }
    NodeFormDialog #services-row { height: auto; }
    NodeFormDialog #services { grid-size: 4; grid-gutter: 0 1; height: auto; width: 1fr; }
    NodeFormDialog #field-retrieve_method { width: 26; }
    NodeFormDialog #form-note { color: $text-muted; margin-top: 1; }
    NodeFormDialog #form-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    NodeFormDialog #form-buttons Button { margin-left: 2; }
    """

    FIELDS = TEXT_FIELDS

    class Invalid(ValidatedForm.Invalid):
        """The node form shows these errors (field -> message; "" is the whole form)."""

    def __init__(
        self,
        title: str,
        save: Callable[[RemoteNode], RemoteNode],
        node: RemoteNode | None = None,
        config_file: Path | None = None,
    ) -> None:
        super().__init__(title)
        self.save = save
        self.node = node
        self.read_only = node is not None and node.source == NodeSource.CONFIG
        self.config_file = config_file

    def compose(self) -> ComposeResult:
        node = self.node
        with Vertical():
            yield Label(self.title_text, id="form-title")
            for field, label, placeholder in TEXT_FIELDS:
                value = "" if node is None else str(getattr(node, field))
                yield from self.field_row(field, label, placeholder, value, disabled=self.read_only)
            services = ALL_SERVICES if node is None else node.allowed_services
            with Horizontal(id="services-row"):
                yield Label("May call us", classes="form-label")
                with Grid(id="services"):
                    for service in DimseService:
                        yield Checkbox(
                            service.value,
                            service in services,
                            id=f"service-{service.value}",
                            compact=True,
                            disabled=self.read_only,
                        )
            yield error_box("allowed_services")
            with Horizontal(classes="form-row"):
                yield Label("Retrieve by", classes="form-label")
                yield Select(
                    METHODS,
                    value="move" if node is None else node.retrieve_method,
                    allow_blank=False,
                    id="field-retrieve_method",
                    compact=True,
                    disabled=self.read_only,
                )
            yield error_box("retrieve_method")
            yield error_box("form")
            if self.read_only:
                where = str(self.config_file) if self.config_file else "the config file"
                yield Static(
                    f"This node is defined in {where}: edit it there.",
                    id="form-note",
                    markup=False,
                )
            with Horizontal(id="form-buttons"):
                if self.read_only:
                    yield Button("Close", id="cancel", compact=True)
                else:
                    yield Button("Cancel", id="cancel", compact=True)
                    yield Button("Save", variant="primary", id="save", compact=True)

    def on_mount(self) -> None:
        if self.read_only:
            self.query_one("#cancel", Button).focus()
        else:
            self.query_one("#field-name", Input).focus()

    # -- values and errors -----------------------------------------------------------------

    def values(self) -> dict[str, object]:
        """The fields as typed."""
        values: dict[str, object] = {
            field: self.query_one(f"#field-{field}", Input).value for field, _l, _p in TEXT_FIELDS
        }
        values["allowed_services"] = frozenset(
            s for s in DimseService if self.query_one(f"#service-{s.value}", Checkbox).value
        )
        method = self.query_one("#field-retrieve_method", Select).value
        values["retrieve_method"] = method if isinstance(method, str) else "move"
        return values

    # -- saving ----------------------------------------------------------------------------

    def action_save(self) -> None:
        """Check every field; save when all are valid."""
        if self.read_only:
            return
        values = self.values()
        errors = field_errors(**values)  # type: ignore[arg-type]
        self.show_errors(errors)
        if errors:
            return
        node = RemoteNode(
            name=str(values["name"]).strip(),
            ae_title=str(values["ae_title"]).strip(),
            host=str(values["host"]).strip(),
            port=int(str(values["port"]).strip()),
            description=str(values["description"]),
            allowed_services=values["allowed_services"],  # type: ignore[arg-type]
            retrieve_method=str(values["retrieve_method"]),
            source=NodeSource.DATABASE,
        )
        self.start_save(lambda: self.save(node))

    def refused(self, error: PacsError) -> dict[str, str] | None:
        """The registry's refusal under the field it names (a duplicate: under the name)."""
        if isinstance(error, DuplicateNodeError):
            return {"name": error.message}
        if isinstance(error, NodeRegistryError | UnknownNodeError):
            match = _FIELD_IN_MESSAGE.search(error.message)
            field = match[1] if match else ""
            text = error.message[match.end() :] if match else f"{error.title}: {error.message}"
            return {field: text}
        return None
