"""SVG snapshots of the viewer drawn with half-blocks (80x24, 160x50; clock and data frozen).

Update after a deliberate change:
``pytest tests/ui/test_viewer_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from tests.ui.conftest import make_app
from tests.ui.test_snapshots import SIZES, then
from tui_pacs.ui.widgets.series_table import SeriesTable


async def open_ct(pilot: Pilot[None]) -> None:
    """MÜLLER's CT (second study), series 2, in the viewer."""
    await pilot.press("down")
    await pilot.pause()


def to_series(pilot: Pilot[None]) -> None:
    """Focus the series list."""
    pilot.app.screen.query_one(SeriesTable).focus()


@pytest.mark.parametrize("size", SIZES)
def test_viewer_ct(snap_compare, demo_config, size) -> None:
    """A CT slice fitted to the pane, corner annotations, image k/N, window and zoom."""
    steps = then(open_ct, to_series, lambda p: p.press("down"), lambda p: p.press("v"))
    assert snap_compare(make_app(demo_config), terminal_size=size, run_before=steps)


@pytest.mark.parametrize("size", SIZES)
def test_viewer_ct_inverted_zoomed(snap_compare, demo_config, size) -> None:
    """The same slice one image further, on preset 2, inverted and zoomed in twice."""
    steps = then(
        open_ct,
        to_series,
        lambda p: p.press("down"),
        lambda p: p.press("v"),
        lambda p: p.press("down"),
        lambda p: p.press("2"),
        lambda p: p.press("i"),
        lambda p: p.press("plus", "plus"),
    )
    assert snap_compare(make_app(demo_config), terminal_size=size, run_before=steps)
