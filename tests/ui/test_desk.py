"""Console tests of the tech desk: the board, live arrivals, flags, and the order form."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from tests.ui.desk_data import DAY, Desk, make_desk
from tui_pacs.model import OrderStatus
from tui_pacs.ui.dialogs.confirm import ConfirmDialog
from tui_pacs.ui.dialogs.order_form import OrderFormDialog
from tui_pacs.ui.screens.archive import ArchiveScreen
from tui_pacs.ui.screens.desk import DeskScreen
from tui_pacs.ui.widgets.study_table import StudyTable
from tui_pacs.ui.widgets.worklist_table import WorklistTable

pytestmark = pytest.mark.asyncio


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    """The frozen desk of desk_data, filled."""
    return make_desk(tmp_path / "store")


async def open_desk(console) -> DeskScreen:
    """Switch to the desk and wait for its board."""
    await console.pilot.press("5")
    await console.settle()
    screen = console.app.screen
    assert isinstance(screen, DeskScreen)
    return screen


def cells(screen: DeskScreen) -> dict[str, list[str]]:
    """The rows on screen as plain text, by row key."""
    table = screen.query_one(WorklistTable)
    return {key: [str(c) for c in table.get_row(key)] for key in table.shown_keys()}


async def test_board_shows_orders_with_counts(console_factory, desk: Desk) -> None:
    """Today's orders appear with status, MPPS, series/images and flags; the stray study too."""
    async with console_factory(desk.config) as console:
        screen = await open_desk(console)
        rows = cells(screen)
        o = desk.orders
        doe, roe = rows[f"order:{o['doe'].id}"], rows[f"order:{o['roe'].id}"]
        smith, lee = rows[f"order:{o['smith'].id}"], rows[f"order:{o['lee'].id}"]
        assert (doe[0], doe[4], doe[6], doe[5]) == ("", "completed", "completed", "2/4")
        assert roe[0] == "ID" and roe[5] == "1/3"
        assert (smith[4], smith[5]) == ("scheduled", "0/0")
        assert lee[0] == "NOIMG" and lee[6] == "completed"
        stray = [r for k, r in rows.items() if k.startswith("study:")]
        assert len(stray) == 1 and stray[0][0] == "NO ORDER" and stray[0][7] == "P7"
        title = str(screen.query_one("#wl-title").render())
        assert "4 orders" in title and "3 flagged" in title
        # Filtered by modality: only the MR order (and no CT stray study).
        screen.query_one("#wl-modality").value = "MR"
        await console.settle()
        assert [k for k in cells(screen) if k.startswith("order:")] == [f"order:{o['smith'].id}"]
        # The flags filter keeps only what a tech must look at.
        screen.query_one("#wl-modality").clear()
        await console.settle()
        await console.pilot.press("exclamation_mark")
        await console.settle()
        assert set(cells(screen)) == {
            f"order:{o['roe'].id}", f"order:{o['lee'].id}",
            *(k for k in rows if k.startswith("study:")),
        }  # fmt: skip


async def test_desk_reads_the_board_once_when_opened(
    console_factory, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the desk reads its board once (its date select announcing its first value does
    not start a second read of the same board)."""
    from tui_pacs.services.worklist import WorklistService

    calls: list[object] = []
    original = WorklistService.board

    def board(self: WorklistService, flt: object = None) -> object:
        calls.append(flt)
        return original(self, flt)  # type: ignore[arg-type]

    monkeypatch.setattr(WorklistService, "board", board)
    async with console_factory(desk.config) as console:
        before = len(calls)
        screen = await open_desk(console)
        assert len(calls) == before + 1
        assert screen.board is not None and len(screen.board.orders) == 4


async def test_live_update_keeps_cursor(console_factory, tmp_path: Path) -> None:
    """Images for an order arriving through the Ingestor update its counts in place (change
    feed), and the cursor stays on the order the tech was looking at."""
    desk = make_desk(tmp_path / "store", filled=False)
    async with console_factory(desk.config) as console:
        screen = await open_desk(console)
        table = screen.query_one(WorklistTable)
        smith = desk.orders["smith"]
        key = f"order:{smith.id}"
        table.move_cursor(row=table.get_row_index(key))
        await console.settle()
        desk.images(smith, series=2, per_series=2)
        console.app.poll_changes()
        await console.settle()
        assert cells(screen)[key][5] == "2/4"
        assert table.current is not None and table.current.key == key
        assert screen.query_one("#wl-detail").render() is not None
        desk.images(smith, per_series=1)
        console.app.poll_changes()
        await console.settle()
        assert cells(screen)[key][5] == "3/5"
        assert table.current.key == key


async def test_flag_opens_study(console_factory, desk: Desk) -> None:
    """On a flagged order (images under another patient ID) one key opens its study in the
    archive screen, cursor on it; on the stray study too."""
    async with console_factory(desk.config) as console:
        screen = await open_desk(console)
        table = screen.query_one(WorklistTable)
        roe = desk.orders["roe"]
        table.move_cursor(row=table.get_row_index(f"order:{roe.id}"))
        await console.settle()
        assert "images carry another Patient ID" in str(screen.query_one("#wl-detail").render())
        await console.pilot.press("o")
        await console.settle()
        archive = console.app.screen
        assert isinstance(archive, ArchiveScreen)
        studies = archive.query_one(StudyTable)
        assert studies.selected_uid == roe.study_instance_uid
        assert archive.study_uid == roe.study_instance_uid
        # Back to the desk: the cursor is still on the flagged order; the stray study opens too.
        await console.pilot.press("5")
        await console.settle()
        assert table.current is not None and table.current.key == f"order:{roe.id}"
        stray = next(k for k in cells(screen) if k.startswith("study:"))
        table.move_cursor(row=table.get_row_index(stray))
        await console.pilot.press("o")
        await console.settle()
        assert console.app.screen.query_one(StudyTable).selected_uid == stray.removeprefix("study:")


async def fill(console, values: dict[str, str]) -> None:
    """Type values into the order form's fields."""
    form = console.app.screen
    for field, value in values.items():
        form.query_one(f"#field-{field}", Input).value = value
    await console.pilot.pause()


@pytest.mark.slow
async def test_create_edit_cancel_order(console_factory, tmp_path: Path) -> None:
    """The order form refuses invalid fields inline, creates and edits orders; cancelling asks
    first and discontinues the order."""
    desk = make_desk(tmp_path / "store", filled=False)
    async with console_factory(desk.config) as console:
        screen = await open_desk(console)
        await console.pilot.press("a")
        await console.settle()
        form = console.app.screen
        assert isinstance(form, OrderFormDialog)
        assert form.query_one("#field-scheduled_procedure_step_start_date", Input).value == DAY
        await fill(console, {"patient_name": "", "modality": "C T", "patient_sex": "X",
                             "scheduled_procedure_step_start_time": "2599"})  # fmt: skip
        await console.pilot.press("ctrl+s")
        await console.settle()
        errors = console.posted(OrderFormDialog.Invalid)[-1].errors
        assert set(errors) == {
            "patient_name", "patient_id", "patient_sex", "modality",
            "scheduled_procedure_step_start_time",
        }  # fmt: skip
        assert "M, F or O" in str(form.query_one("#error-patient_sex").render())
        assert form.query_one("#field-patient_name", Input).has_class("-invalid")
        assert console.app.focused is form.query_one("#field-patient_name", Input)
        await fill(console, {"patient_name": "NEW^PATIENT", "patient_id": "N1", "modality": "ct",
                             "patient_sex": "f", "scheduled_procedure_step_start_time": "14:30",
                             "accession_number": "ACC9"})  # fmt: skip
        await console.pilot.press("ctrl+s")
        await console.settle()
        assert isinstance(console.app.screen, DeskScreen)
        saved = console.posted(DeskScreen.OrderSaved)[-1]
        assert saved.action == "created"
        created = desk.service.get(saved.order.id)
        assert (
            created.modality,
            created.patient_sex,
            created.scheduled_procedure_step_start_time,
        ) == ("CT", "F", "143000")
        assert created.study_instance_uid  # assigned
        table = screen.query_one(WorklistTable)
        assert table.current is not None and table.current.key == f"order:{created.id}"
        # Edit: the form opens with the order's values; a bad date is refused, then fixed.
        await console.pilot.press("e")
        await console.settle()
        form = console.app.screen
        assert form.query_one("#field-accession_number", Input).value == "ACC9"
        await fill(console, {"patient_birth_date": "19991399"})
        await console.pilot.press("ctrl+s")
        await console.settle()
        assert set(console.posted(OrderFormDialog.Invalid)[-1].errors) == {"patient_birth_date"}
        await fill(
            console,
            {"patient_birth_date": "1999-12-31", "requested_procedure_description": "CT wrist"},
        )
        await console.pilot.press("ctrl+s")
        await console.settle()
        edited = desk.service.get(created.id)
        assert (edited.patient_birth_date, edited.requested_procedure_description) == (
            "19991231",
            "CT wrist",
        )
        assert cells(screen)[f"order:{created.id}"][10] == "CT wrist"
        # Cancel: asks first; "no" keeps it, "yes" discontinues it.
        await console.pilot.press("c")
        await console.settle()
        assert isinstance(console.app.screen, ConfirmDialog)
        await console.pilot.press("escape")
        await console.settle()
        assert not desk.service.get(created.id).cancelled
        await console.pilot.press("c")
        await console.settle()
        console.app.screen.dismiss(True)
        await console.settle()
        gone = desk.service.get(created.id)
        assert gone.cancelled and gone.status == OrderStatus.DISCONTINUED
        assert cells(screen)[f"order:{created.id}"][4] == "cancelled"
        assert console.posted(DeskScreen.OrderSaved)[-1].action == "cancelled"


async def test_desk_keys_in_help_and_palette(console_factory, tmp_path: Path) -> None:
    """Every desk action has a key listed in the help screen and a command palette entry."""
    from tui_pacs.ui.screens.help import binding_rows

    desk = make_desk(tmp_path / "store", filled=False)
    async with console_factory(desk.config) as console:
        screen = await open_desk(console)
        rows = {(d, w) for _k, d, w in binding_rows(screen)}
        for name in ("New order", "Edit order", "Cancel order", "Date", "Arrived"):
            assert (name, "Desk") in rows
        for name in ("Open study", "Open order", "Flagged only"):
            assert (name, "Worklist") in rows
        assert ("Desk", "Everywhere") in rows
        commands = {c.title for c in console.app.get_system_commands(screen)}
        assert {"New order", "Open study", "Flagged only"} <= commands
