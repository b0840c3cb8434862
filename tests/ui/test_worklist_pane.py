"""Console tests of the worklist pane on the archive screen: flags, live counts, filters, keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from tests.ui.desk_data import Desk, add_name_and_count, make_desk
from tui_pacs.ui.dialogs.order_form import OrderFormDialog
from tui_pacs.ui.screens.archive import ArchiveScreen
from tui_pacs.ui.widgets.study_table import StudyTable
from tui_pacs.ui.widgets.worklist_pane import WorklistPane
from tui_pacs.ui.widgets.worklist_table import WorklistTable

pytestmark = pytest.mark.asyncio


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    """The frozen desk of desk_data with every kind of flag."""
    return add_name_and_count(make_desk(tmp_path / "store"))


def pane_of(console) -> WorklistPane:
    """The worklist pane of the archive screen."""
    screen = console.app.screen
    assert isinstance(screen, ArchiveScreen)
    return screen.query_one(WorklistPane)


def cells(pane: WorklistPane) -> dict[str, list[str]]:
    """The pane's rows as plain text, by row key, in screen order."""
    table = pane.query_one(WorklistTable)
    return {key: [str(c) for c in table.get_row(key)] for key in table.shown_keys()}


def detail(pane: WorklistPane) -> str:
    """The pane's hint line."""
    return str(pane.query_one("#wl-detail").render())


async def put_cursor(console, key: str) -> None:
    """Focus the pane (key w) and put its cursor on the row ``key``."""
    pane = pane_of(console)
    if console.app.focused is not pane.table:
        await console.pilot.press("w")
    pane.table.move_cursor(row=pane.table.get_row_index(key))
    await console.settle()


async def test_pane_on_the_first_screen_flags_first(console_factory, desk: Desk) -> None:
    """The archive screen shows today's orders above the studies, flagged rows first, with
    their status, MPPS and series/images; the study list keeps the focus."""
    async with console_factory(desk.config) as console:
        pane = pane_of(console)
        assert pane.display
        rows = cells(pane)
        flags = [r[0] for r in rows.values()]
        assert flags == ["ID", "NOIMG", "NAME", "COUNT", "NO ORDER", "", ""]
        o = desk.orders
        doe, park = rows[f"order:{o['doe'].id}"], rows[f"order:{o['park'].id}"]
        assert (doe[4], doe[5], doe[6]) == ("completed", "2/4", "completed")
        assert (park[4], park[5], park[6]) == ("completed", "1/2 (3)", "completed")
        title = str(pane.query_one("#wl-title").render())
        assert "6 orders" in title and "5 flagged" in title
        assert isinstance(console.app.focused, StudyTable)
        assert console.posted(WorklistPane.BoardShown)


@pytest.mark.slow
async def test_every_flag_opens_its_study_or_order(console_factory, desk: Desk) -> None:
    """At 80x24, each kind of flag (patient ID, patient name, MPPS count, completed without
    images, no order) is explained on the hint line; o puts the archive's own study list on the
    flagged study, O opens the order in the order form."""
    o = desk.orders
    study_of = {name: o[name].study_instance_uid for name in ("roe", "kim", "park")}
    async with console_factory(desk.config, size=(80, 24)) as console:
        archive = console.app.screen
        studies = archive.query_one(StudyTable)
        pane = pane_of(console)
        stray = next(k for k in cells(pane) if k.startswith("study:"))
        cases = [
            ("roe", "ID", "another Patient ID"),
            ("kim", "NAME", "another Patient Name"),
            ("park", "COUNT", "MPPS reports another number"),
        ]
        for name, flag, why in cases:
            key = f"order:{o[name].id}"
            await put_cursor(console, key)
            assert cells(pane)[key][0] == flag
            assert why in detail(pane) and "o: study, O: order" in detail(pane)
            await console.pilot.press("o")
            await console.settle()
            assert studies.selected_uid == study_of[name]
            assert archive.study_uid == study_of[name]
            assert console.app.focused is studies
            await put_cursor(console, key)
            await console.pilot.press("O")
            await console.settle()
            form = console.app.screen
            assert isinstance(form, OrderFormDialog)
            assert form.query_one("#field-patient_id", Input).value == o[name].patient_id
            await console.pilot.press("escape")
            await console.settle()
        # Completed by MPPS, no image: nothing to show in the archive; the order opens.
        key = f"order:{o['lee'].id}"
        await put_cursor(console, key)
        assert "completed by MPPS but no image" in detail(pane)
        before = studies.selected_uid
        await console.pilot.press("o")
        await console.settle()
        assert studies.selected_uid == before and console.app.focused is pane.table
        await console.pilot.press("O")
        await console.settle()
        assert isinstance(console.app.screen, OrderFormDialog)
        await console.pilot.press("escape")
        await console.settle()
        # A study no order claims: o shows it; there is no order to open.
        await put_cursor(console, stray)
        assert "study matches no order" in detail(pane)
        await console.pilot.press("O")
        await console.settle()
        assert isinstance(console.app.screen, ArchiveScreen)
        await console.pilot.press("o")
        await console.settle()
        assert studies.selected_uid == stray.removeprefix("study:")


async def test_open_order_saves_and_redraws(console_factory, desk: Desk) -> None:
    """O opens the flagged order; saving it posts OrderSaved and redraws the row in place."""
    roe = desk.orders["roe"]
    async with console_factory(desk.config) as console:
        pane = pane_of(console)
        key = f"order:{roe.id}"
        await put_cursor(console, key)
        await console.pilot.press("O")
        await console.settle()
        form = console.app.screen
        form.query_one("#field-requested_procedure_description", Input).value = "CT chest low"
        await console.pilot.press("ctrl+s")
        await console.settle()
        assert console.posted(WorklistPane.OrderSaved)[-1].action == "edited"
        assert cells(pane)[key][10] == "CT chest low"
        assert pane.table.current is not None and pane.table.current.key == key


async def test_show_study_filters_to_its_patient(console_factory, desk: Desk) -> None:
    """A study not on the page shown: the filter becomes its patient, any date, and the
    cursor lands on it once that page is drawn."""
    roe = desk.orders["roe"]
    async with console_factory(desk.config, page_size=1) as console:
        archive = console.app.screen
        studies = archive.query_one(StudyTable)
        assert studies.selected_uid != roe.study_instance_uid
        await put_cursor(console, f"order:{roe.id}")
        await console.pilot.press("o")
        await console.settle()
        assert archive.query_one("#filter-id", Input).value == "P9"  # the images' patient
        assert studies.selected_uid == roe.study_instance_uid
        assert console.app.focused is studies


async def test_counts_and_flags_update_live(console_factory, tmp_path: Path) -> None:
    """Images arriving (change feed) update an order's series/images in the pane in place, and
    a flag appears as soon as images under another Patient ID arrive; the cursor stays put."""
    desk = make_desk(tmp_path / "store", filled=False)
    async with console_factory(desk.config, size=(80, 24)) as console:
        pane = pane_of(console)
        assert pane.display  # orders today: shown without asking
        smith, doe = desk.orders["smith"], desk.orders["doe"]
        key = f"order:{smith.id}"
        await put_cursor(console, key)
        desk.images(smith, series=2, per_series=2)
        console.app.poll_changes()
        await console.settle()
        assert cells(pane)[key][5] == "2/4"
        assert pane.table.current is not None and pane.table.current.key == key
        assert "flagged" not in str(pane.query_one("#wl-title").render())
        desk.images(doe, patient_id="P8", per_series=3)
        console.app.poll_changes()
        await console.settle()
        doe_row = cells(pane)[f"order:{doe.id}"]
        assert (doe_row[0], doe_row[5]) == ("ID", "1/3")
        assert list(cells(pane))[0] == f"order:{doe.id}"  # flagged: first
        assert "1 flagged" in str(pane.query_one("#wl-title").render())
        assert pane.table.current.key == key
        # The archive's own list follows the same feed.
        assert console.app.screen.query_one(StudyTable).row_count == 2


async def test_pane_of_another_mode_catches_up_when_back(console_factory, tmp_path: Path) -> None:
    """While the desk is on screen, the archive's pane does not read the board for each change
    batch; back on the archive screen it reads it once and shows what arrived meanwhile."""
    desk = make_desk(tmp_path / "store", filled=False)
    async with console_factory(desk.config, size=(80, 24)) as console:
        pane = pane_of(console)
        smith = desk.orders["smith"]
        key = f"order:{smith.id}"
        assert cells(pane)[key][5] == "0/0"
        await console.pilot.press("5")
        await console.settle()
        loads = console.posted(WorklistPane.BoardShown)
        desk.images(smith, series=1, per_series=2)
        console.app.poll_changes()
        await console.settle()
        desk_pane = console.app.screen.query_one(WorklistPane)
        assert desk_pane is not pane
        shown = console.posted(WorklistPane.BoardShown)[len(loads) :]
        assert shown and {m._sender for m in shown} == {desk_pane}  # the desk's pane only
        assert cells(desk_pane)[key][5] == "1/2" and cells(pane)[key][5] == "0/0"
        await console.pilot.press("1")
        await console.settle()
        assert pane_of(console) is pane and cells(pane)[key][5] == "1/2"


async def test_pane_filters_by_modality_and_station(console_factory, desk: Desk) -> None:
    """The pane's modality select and station field narrow the orders (and stray studies)."""
    o = desk.orders
    async with console_factory(desk.config) as console:
        pane = pane_of(console)
        pane.query_one("#wl-modality").value = "MR"
        await console.settle()
        assert list(cells(pane)) == [f"order:{o['smith'].id}"]
        pane.query_one("#wl-modality").clear()
        pane.query_one("#wl-station", Input).value = "us1"
        await console.settle()
        assert list(cells(pane)) == [f"order:{o['lee'].id}"]
        pane.query_one("#wl-station", Input).value = ""
        await console.settle()
        assert len(cells(pane)) == 7


async def test_pane_keys_and_default_visibility(console_factory, demo_config) -> None:
    """Without orders today the pane stays hidden; w shows and focuses it (and w again goes
    back to the studies); W cycles compact, large and hidden."""
    async with console_factory(demo_config) as console:
        pane = pane_of(console)
        studies = console.app.screen.query_one(StudyTable)
        assert not pane.display
        await console.pilot.press("w")
        await console.settle()
        assert pane.display and console.app.focused is pane.table
        assert "0 orders" in str(pane.query_one("#wl-title").render())
        await console.pilot.press("w")
        assert console.app.focused is studies
        await console.pilot.press("W")
        assert pane.has_class("-large") and pane.display
        await console.pilot.press("W")
        await console.settle()
        assert not pane.display and console.app.focused is studies
        await console.pilot.press("W")
        await console.settle()
        assert pane.display and not pane.has_class("-large")


async def test_demo_shows_the_pane_with_every_flag(console_factory, tmp_path: Path) -> None:
    """--demo on a fresh store: the pane appears on the first screen once today's demo orders
    arrive (change feed), with one of each flag for a new user to see, and the images of the
    order still in progress."""
    from tests.ui.conftest import store_config

    async with console_factory(store_config(tmp_path / "fresh"), demo=True) as console:
        console.app.poll_changes()
        await console.settle()
        pane = pane_of(console)
        assert pane.display
        rows = cells(pane).values()
        codes = {code for row in rows for code in row[0].split()}
        assert {"ID", "NAME", "COUNT", "NOIMG", "NO"} <= codes
        # An MPPS in progress has reported no image count yet: none is shown against it.
        assert [r[5] for r in rows if r[6] == "in progress"] == ["1/1"]
