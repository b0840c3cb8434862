"""SVG snapshots of the worklist pane on the archive screen, a patient name mismatch under the
cursor (80x24 and 200x60; data, clock and blink frozen).

Update them after a deliberate change with
``pytest tests/ui/test_worklist_pane_snapshots.py --snapshot-update`` and look at the report first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.ui.conftest import make_app
from tests.ui.desk_data import add_name_and_count, make_desk
from tests.ui.test_snapshots import then
from tui_pacs.ui.widgets.worklist_table import WorklistTable

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 60), id="200x60")]


@pytest.mark.parametrize("size", SIZES)
def test_pane_flagged_mismatch(snap_compare, tmp_path: Path, size) -> None:
    """The archive screen with the worklist pane focused (w): flagged rows first, the cursor on
    an order whose images carry another patient name, the flag explained on the hint line."""
    desk = add_name_and_count(make_desk(tmp_path / "store"))
    kim = f"order:{desk.orders['kim'].id}"

    async def on_kim(pilot: Pilot[None]) -> None:
        table = pilot.app.screen.query_one(WorklistTable)
        table.move_cursor(row=table.get_row_index(kim))
        await pilot.pause()

    assert snap_compare(
        make_app(desk.config),
        terminal_size=size,
        run_before=then(lambda p: p.press("w"), on_kim),
    )
