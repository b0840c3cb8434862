"""The worklist table's live updates: only changed rows are touched, in place, cursor kept."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from tui_pacs.model import UnmatchedStudy
from tui_pacs.ui.widgets.worklist_table import DeskRow, WorklistTable, row_cells

pytestmark = pytest.mark.asyncio


def study(uid: str, images: int = 1) -> DeskRow:
    """A row of a study no order claims (the simplest row to make)."""
    s = UnmatchedStudy(uid, f"P{uid}", f"NAME^{uid}", "", "20261120", "CT head", ("CT",), 1, images)
    return DeskRow(f"study:{uid}", study=s)


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield WorklistTable()


def screen_cells(table: WorklistTable) -> list[list[str]]:
    """The rows' cells as text, in screen order."""
    return [[str(c) for c in table.get_row(key)] for key in table.shown_keys()]


async def test_live_update_touches_only_changed_rows() -> None:
    """A redraw with a row changed, one gone, one new and the order changed updates the table
    in place: unchanged rows keep their cells (not added again), the rows end in the new order
    with the new cells, and the cursor stays on the row it was on."""
    async with TableApp().run_test() as pilot:
        table = pilot.app.query_one(WorklistTable)
        first = [study("1"), study("2"), study("3"), study("4")]
        table.show_rows(first)
        await pilot.pause()
        table.move_cursor(row=1)  # on study 2
        kept = table.get_cell("study:1", "flags")
        second = [study("4", images=7), study("5"), study("2"), study("1")]
        table.show_rows(second)
        await pilot.pause()
        assert table.shown_keys() == [r.key for r in second]
        assert screen_cells(table) == [[str(c) for c in row_cells(r)] for r in second]
        assert table.get_cell("study:1", "flags") is kept
        assert table.current == second[2] and table.cursor_row == 2
        # The same rows again: nothing moves; a row asked for gets the cursor.
        table.show_rows(second, select="study:1")
        await pilot.pause()
        assert table.shown_keys() == [r.key for r in second]
        assert table.current == second[3]


async def test_cursor_row_gone_and_board_replaced() -> None:
    """When the row under the cursor goes, the cursor stays at its place in the list; a board
    with mostly other rows (a new filter) fills the table afresh; an empty board empties it."""
    async with TableApp().run_test() as pilot:
        table = pilot.app.query_one(WorklistTable)
        table.show_rows([study("1"), study("2"), study("3")])
        await pilot.pause()
        table.move_cursor(row=2)
        table.show_rows([study("1"), study("2")])
        await pilot.pause()
        assert table.shown_keys() == ["study:1", "study:2"] and table.cursor_row == 1
        other = [study(str(n)) for n in range(10, 14)]
        table.show_rows(other)
        await pilot.pause()
        assert table.shown_keys() == [r.key for r in other]
        assert screen_cells(table) == [[str(c) for c in row_cells(r)] for r in other]
        table.show_rows([])
        await pilot.pause()
        assert table.row_count == 0 and table.current is None
