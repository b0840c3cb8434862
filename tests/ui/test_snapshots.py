"""SVG snapshots of every console screen at 80x24 and 160x50 (clock, data and blink frozen).

Update them after a deliberate change with ``pytest tests/ui/test_snapshots.py --snapshot-update``
and look at the report before committing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.ui.conftest import make_app, settle_pilot
from tui_pacs.errors import NetworkError
from tui_pacs.ui.dialogs.confirm import ConfirmDialog
from tui_pacs.ui.log_buffer import LogBuffer

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 50), id="160x50")]


async def settle(pilot: Pilot[None]) -> None:
    """Wait for every worker and the messages they posted; stop the input cursors blinking."""
    app = pilot.app
    await settle_pilot(pilot)
    for box in app.screen.query(Input):
        box.cursor_blink = False
    await pilot.pause()


def then(*steps: Callable[[Pilot[None]], Awaitable[Any] | Any]) -> Callable[[Pilot[None]], Any]:
    """A run_before that settles, runs each step (settling after each), and settles."""

    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        for step in steps:
            result = step(pilot)
            if result is not None and hasattr(result, "__await__"):
                await result
            await settle(pilot)

    return run


@pytest.mark.parametrize("size", SIZES)
def test_archive_screen(snap_compare, demo_config, size) -> None:
    """The archive screen at start: filter bar, newest studies, series of the first one."""
    assert snap_compare(make_app(demo_config), terminal_size=size, run_before=then())


@pytest.mark.parametrize("size", SIZES)
def test_archive_filtered_and_sorted(snap_compare, demo_config, size) -> None:
    """A name filter and a sort by patient ID, as the title line and the rows show them."""

    def filter_and_sort(pilot: Pilot[None]) -> None:
        pilot.app.screen.query_one("#filter-name", Input).value = "o"

    assert snap_compare(
        make_app(demo_config),
        terminal_size=size,
        run_before=then(filter_and_sort, lambda p: p.press("s", "s", "s")),
    )


@pytest.mark.parametrize("size", SIZES)
def test_tags_panel(snap_compare, demo_config, size) -> None:
    """The instance panel: beside the lists when wide, over them when narrow."""
    assert snap_compare(
        make_app(demo_config),
        terminal_size=size,
        run_before=then(lambda p: p.press("down", "tab", "down", "t")),
    )


@pytest.mark.parametrize("size", SIZES)
def test_tags_search(snap_compare, demo_config, size) -> None:
    """A tag search keeps the matching elements and the sequences leading to them, expanded."""

    def search(pilot: Pilot[None]) -> None:
        pilot.app.screen.query_one("#tag-search", Input).value = "code"

    assert snap_compare(
        make_app(demo_config),
        terminal_size=size,
        run_before=then(lambda p: p.press("t"), search),
    )


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare, demo_config, size) -> None:
    """The help screen lists the keys of the archive screen and of the whole console."""
    assert snap_compare(
        make_app(demo_config),
        terminal_size=size,
        run_before=then(lambda p: p.press("question_mark")),
    )


@pytest.mark.parametrize("size", SIZES)
def test_log_screen(snap_compare, demo_config, size) -> None:
    """The log screen (empty: the log lines carry wall-clock times)."""

    def show_log(pilot: Pilot[None]) -> Any:
        pilot.app.log_buffer = LogBuffer()  # type: ignore[attr-defined]
        return pilot.press("L")

    assert snap_compare(make_app(demo_config), terminal_size=size, run_before=then(show_log))


@pytest.mark.parametrize("size", SIZES)
def test_error_dialog(snap_compare, demo_config, size) -> None:
    """The one error dialog: title, message and the DICOM status."""

    def fail(pilot: Pilot[None]) -> None:
        pilot.app.show_error(  # type: ignore[attr-defined]
            NetworkError(
                "PACS1 refused the C-MOVE: move destination unknown (is TUI_PACS in its nodes?)",
                "Retrieve failed",
                status=0xA801,
            )
        )

    assert snap_compare(make_app(demo_config), terminal_size=size, run_before=then(fail))


@pytest.mark.parametrize("size", SIZES)
def test_confirm_dialog(snap_compare, demo_config, size) -> None:
    """The confirmation asked before quitting a console that hosts the node."""

    def ask(pilot: Pilot[None]) -> None:
        pilot.app.push_screen(
            ConfirmDialog(
                "Quit tui-pacs?",
                "The node TEST_PACS runs inside this console (port 11112). Quitting stops it: "
                "modalities cannot send here until a node runs again.",
                "Quit",
            )
        )

    assert snap_compare(make_app(demo_config), terminal_size=size, run_before=then(ask))
