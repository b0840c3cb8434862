"""SVG snapshots of the nodes screen and the node form at 80x24 and 160x50 (data frozen)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.ui.conftest import make_app
from tests.ui.screen_data import HOSPITAL, add_nodes, utc_clock  # noqa: F401
from tests.ui.test_snapshots import SIZES, then


@pytest.mark.parametrize("size", SIZES)
def test_nodes_screen(snap_compare, demo_config, utc_clock, size) -> None:  # noqa: F811
    """Config and database nodes with their last echo; the selected node in words."""
    config = replace(demo_config, nodes=(HOSPITAL,))
    add_nodes(config)
    assert snap_compare(
        make_app(config), terminal_size=size, run_before=then(lambda p: p.press("4"))
    )


@pytest.mark.parametrize("size", SIZES)
def test_node_form_errors(snap_compare, demo_config, utc_clock, size) -> None:  # noqa: F811
    """The add form with an AE title, host and port refused, each under its field."""
    config = replace(demo_config, nodes=(HOSPITAL,))
    add_nodes(config)

    def fill(pilot: Pilot[None]) -> None:
        for field, value in (
            ("name", "mr-scanner"),
            ("ae_title", "MR_SCANNER_NUMBER_2"),
            ("host", "mr 2"),
            ("port", "0"),
        ):
            pilot.app.screen.query_one(f"#field-{field}", Input).value = value

    assert snap_compare(
        make_app(config),
        terminal_size=size,
        run_before=then(
            lambda p: p.press("4"), lambda p: p.press("a"), fill, lambda p: p.press("ctrl+s")
        ),
    )
