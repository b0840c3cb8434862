"""SVG snapshots of the tech desk with flagged orders (80x24 and 160x50; data, clock, blink frozen).

Update them after a deliberate change with
``pytest tests/ui/test_desk_snapshots.py --snapshot-update`` and look at the report first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.ui.conftest import make_app
from tests.ui.desk_data import make_desk
from tests.ui.test_snapshots import SIZES, then
from tui_pacs.ui.widgets.worklist_table import WorklistTable


async def _open_desk(pilot: Pilot[None]) -> None:
    await pilot.press("5")


def _on_order(name: str, order_ids: dict[str, int]):
    async def step(pilot: Pilot[None]) -> None:
        table = pilot.app.screen.query_one(WorklistTable)
        table.move_cursor(row=table.get_row_index(f"order:{order_ids[name]}"))
        await pilot.pause()

    return step


@pytest.mark.parametrize("size", SIZES)
def test_desk_flagged_mismatch(snap_compare, tmp_path: Path, size) -> None:
    """The desk: a clean completed order, a patient ID mismatch under the cursor (its flag
    explained below), a scheduled order, an MPPS-completed order with no image, a stray study."""
    desk = make_desk(tmp_path / "store")
    ids = {name: order.id for name, order in desk.orders.items()}
    assert snap_compare(
        make_app(desk.config),
        terminal_size=size,
        run_before=then(_open_desk, _on_order("roe", ids)),
    )


@pytest.mark.parametrize("size", SIZES)
def test_order_form_errors(snap_compare, tmp_path: Path, size) -> None:
    """The order form after saving with missing and invalid fields: errors under each field."""
    desk = make_desk(tmp_path / "store", filled=False)

    async def invalid(pilot: Pilot[None]) -> None:
        await pilot.press("a")
        await pilot.pause()
        form = pilot.app.screen
        form.query_one("#field-patient_sex").value = "X"
        form.query_one("#field-modality").value = "C T"
        await pilot.press("ctrl+s")

    assert snap_compare(
        make_app(desk.config), terminal_size=size, run_before=then(_open_desk, invalid)
    )
