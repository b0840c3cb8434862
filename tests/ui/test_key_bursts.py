"""Keys arriving in one burst (a paste, a fast typist on a slow SSH link) land where typed.

The driver hands every key of a burst to the app at once. These tests post a whole burst before
the app handles any of it, which is what a slow link does, and check each field got its part.
"""

from __future__ import annotations

import pytest
from textual import events
from textual.app import App
from textual.keys import _character_to_key
from textual.widgets import Input

from tests.ui.test_nodes import open_nodes, settle, with_nodes
from tui_pacs.ui.dialogs.node_form import NodeFormDialog
from tui_pacs.ui.screens.archive import ArchiveScreen

pytestmark = pytest.mark.asyncio


def burst(app: App, *parts: str) -> None:
    """Post ``parts`` as one burst of key events; the parts are separated by Tab."""
    keys: list[str] = []
    for n, part in enumerate(parts):
        if n:
            keys.append("tab")
        keys.extend(part)
    for key in keys:
        if len(key) == 1:  # a character: its key name ("/" is "slash"), as the driver makes it
            app.post_message(events.Key(_character_to_key(key), key))
        else:
            app.post_message(events.Key(key, None))


async def test_a_burst_across_tab_fills_each_form_field(demo_config, console_factory) -> None:
    """Node form: "h5scp<Tab>H5SCP<Tab>127.0.0.1" in one burst fills name, AE title, host."""
    async with console_factory(with_nodes(demo_config)) as console:
        await open_nodes(console)
        await console.pilot.press("a")
        form = console.app.screen
        assert isinstance(form, NodeFormDialog)
        burst(console.app, "h5scp", "H5SCP", "127.0.0.1")
        await settle(console)
        fields = ("name", "ae_title", "host")
        values = {f: form.query_one(f"#field-{f}", Input).value for f in fields}
        assert values == {"name": "h5scp", "ae_title": "H5SCP", "host": "127.0.0.1"}
        assert form.query_one("#field-host", Input).has_focus


async def test_a_burst_across_tab_fills_each_filter_field(demo_config, console_factory) -> None:
    """Archive filter bar: "/" then "mül<Tab>P0" in one burst: a name prefix and an ID prefix."""
    async with console_factory(demo_config) as console:
        screen = console.app.screen
        assert isinstance(screen, ArchiveScreen)
        burst(console.app, "/mül", "P0")
        await console.settle()
        assert screen.query_one("#filter-name", Input).value == "mül"
        assert screen.query_one("#filter-id", Input).value == "P0"
