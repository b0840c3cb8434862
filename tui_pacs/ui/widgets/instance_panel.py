"""The instance panel: which instance of the series, its full tag tree, a tag search box.

The ``#preview`` slot beside the tree is where the image preview of the imaging issue goes.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label

from tui_pacs.model import InstanceSummary, TagNode
from tui_pacs.services.browse import search_tags
from tui_pacs.ui.widgets.tag_tree import TagTree


class InstancePanel(Vertical):
    """Shows one instance of the selected series; asks for another with :class:`Step`."""

    class InstanceChosen(Message):
        """The instance to show changed: load its tags."""

        def __init__(self, instance: InstanceSummary) -> None:
            super().__init__()
            self.instance = instance

    class TagsShown(Message):
        """The tree now shows ``count`` top-level nodes for ``search`` (empty: the full tree)."""

        def __init__(self, search: str, count: int) -> None:
            super().__init__()
            self.search = search
            self.count = count

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.instances: list[InstanceSummary] = []
        self.position = 0
        self.tag_nodes: list[TagNode] = []

    def compose(self) -> ComposeResult:
        yield Label("No series selected", id="instance-title")
        yield Input(placeholder="find tag: keyword, gggg,eeee or value", id="tag-search")
        with Horizontal(id="instance-body"):
            yield TagTree(id="tag-tree")
            # The image preview (imaging issue) mounts here; hidden until then.
            yield Vertical(id="preview")

    @property
    def current(self) -> InstanceSummary | None:
        """The instance shown."""
        return self.instances[self.position] if self.instances else None

    def show_instances(self, instances: list[InstanceSummary], keep_uid: str | None = None) -> None:
        """Set the instances of the series; shows the kept one (or the first)."""
        self.instances = instances
        self.position = 0
        if keep_uid is not None:
            for i, inst in enumerate(instances):
                if inst.sop_instance_uid == keep_uid:
                    self.position = i
        self._title()
        if instances:
            self.post_message(self.InstanceChosen(instances[self.position]))
        else:
            self.show_tags([])

    def step(self, delta: int) -> None:
        """Show the next (``+1``) or previous (``-1``) instance of the series."""
        if not self.instances:
            return
        index = max(0, min(len(self.instances) - 1, self.position + delta))
        if index != self.position:
            self.position = index
            self._title()
            self.post_message(self.InstanceChosen(self.instances[index]))

    def _title(self) -> None:
        label = self.query_one("#instance-title", Label)
        inst = self.current
        if inst is None:
            label.update("No instances")
            return
        size = f" · {inst.columns}×{inst.rows}" if inst.rows and inst.columns else ""
        frames = f" · {inst.number_of_frames} frames" if (inst.number_of_frames or 0) > 1 else ""
        number = "" if inst.instance_number is None else f" · #{inst.instance_number}"
        label.update(f"Instance {self.position + 1}/{len(self.instances)}{number}{size}{frames}")

    def show_tags(self, nodes: list[TagNode]) -> None:
        """Show the tag tree of the current instance (filtered by the search box)."""
        self.tag_nodes = nodes
        self._draw()

    def _draw(self) -> None:
        text = self.query_one("#tag-search", Input).value
        shown = search_tags(self.tag_nodes, text) if text.strip() else self.tag_nodes
        self.query_one(TagTree).show_nodes(shown, expand=bool(text.strip()))
        self.post_message(self.TagsShown(text.strip(), len(shown)))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "tag-search":
            event.stop()
            self._draw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "tag-search":
            event.stop()
            self.query_one(TagTree).focus()

    def focus_search(self) -> None:
        """Put the cursor in the tag search box."""
        # At once (focus() waits for the queued events): the next keys typed are the search.
        self.screen.set_focus(self.query_one("#tag-search", Input))
