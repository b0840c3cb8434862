"""The tag tree of one instance: every element, sequences expandable."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui_pacs.model import TagNode

#: Expand every node of a search result up to this many nodes (beyond, only the first level).
EXPAND_LIMIT = 400


def node_label(node: TagNode) -> Text:
    """``(0010,0010) PatientName PN  DOE^JOHN`` with the parts styled apart."""
    if not node.tag:
        return Text(node.keyword, style="bold")
    label = Text(no_wrap=True, overflow="ellipsis")
    label.append(node.tag_text, style="dim")
    label.append(" ")
    label.append(node.keyword or node.name, style="bold" if node.keyword else "italic")
    label.append(f" {node.vr}", style="cyan")
    if node.value:
        label.append("  ")
        label.append(node.value)
    return label


class TagTree(Tree[TagNode]):
    """Shows a list of :class:`TagNode`; sequences and items are expandable branches."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("Tags", **kwargs)  # type: ignore[arg-type]
        self.show_root = False
        self.guide_depth = 2

    def show_nodes(self, nodes: list[TagNode], expand: bool = False) -> None:
        """Replace the tree with ``nodes``; ``expand`` opens every branch (search results)."""
        self.clear()
        count = 0

        def add(parent: TreeNode[TagNode], items: tuple[TagNode, ...] | list[TagNode]) -> None:
            nonlocal count
            for item in items:
                count += 1
                if item.children:
                    branch = parent.add(node_label(item), data=item)
                    add(branch, item.children)
                    if expand and count < EXPAND_LIMIT:
                        branch.expand()
                else:
                    parent.add_leaf(node_label(item), data=item)

        add(self.root, nodes)
        self.root.expand()
        self.cursor_line = 0
