"""Pilot tests of the archive screen: filter, select, page, sort, live arrivals, tags, errors."""

from __future__ import annotations

import io
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from pydicom import dcmwrite
from textual.coordinate import Coordinate
from textual.widgets import Input, RichLog, Select

from tests.ui.conftest import TODAY
from tui_pacs.errors import NetworkError
from tui_pacs.services.demo import demo_datasets
from tui_pacs.services.ingest import Ingestor
from tui_pacs.store.db import use_database
from tui_pacs.store.models import Instance
from tui_pacs.ui.dialogs.confirm import ConfirmDialog
from tui_pacs.ui.dialogs.error import ErrorDialog
from tui_pacs.ui.messages import ChangesArrived
from tui_pacs.ui.screens.archive import ArchiveScreen
from tui_pacs.ui.screens.help import HelpScreen
from tui_pacs.ui.screens.log import LogScreen
from tui_pacs.ui.screens.viewer import ViewerScreen
from tui_pacs.ui.widgets.instance_panel import InstancePanel
from tui_pacs.ui.widgets.series_table import SeriesTable
from tui_pacs.ui.widgets.status_bar import NodeStatusBar
from tui_pacs.ui.widgets.study_table import StudyTable
from tui_pacs.ui.widgets.tag_tree import TagTree

pytestmark = pytest.mark.asyncio


def names(table: StudyTable) -> list[str]:
    """Patient column of every row, as shown."""
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


def title(console) -> str:  # type: ignore[no-untyped-def]
    return str(console.app.screen.query_one("#studies-title").render())


async def test_start_shows_newest_studies_and_count(demo_config, console_factory) -> None:
    """At start the first page holds every demo study, newest first, with the count."""
    async with console_factory(demo_config) as console:
        screen = console.app.screen
        assert isinstance(screen, ArchiveScreen)
        table = screen.query_one(StudyTable)
        assert table.row_count == 20
        assert names(table)[:2] == ["SMITH, John Q", "MÜLLER, Jürgen"]
        assert str(table.get_row_at(0)[2]) == "2026-11-20 11:05"
        shown = console.posted(ArchiveScreen.PageShown)
        assert shown and shown[-1].reason == "start" and len(shown[-1].page.studies) == 20
        assert console.posted(ArchiveScreen.CountShown)[-1].total == 20
        assert "Studies 1–20 of 20" in title(console)


async def test_filter_by_name_id_accession(demo_config, console_factory) -> None:
    """Typing in the name, ID and accession fields narrows the list (non-ASCII, any name part)."""
    async with console_factory(demo_config) as console:
        table = console.app.screen.query_one(StudyTable)
        await console.pilot.press("slash")
        await console.type("mü")
        await console.settle()
        assert names(table) == ["MÜLLER, Jürgen"] * 3
        assert "of 3" in title(console) and "filtered" in title(console)
        assert console.posted(ArchiveScreen.CountShown)[-1].total == 3
        name = console.app.screen.query_one("#filter-name", Input)
        name.value = "maría"  # a given name finds the patient too
        await console.settle()
        assert names(table) == ["GARCÍA LÓPEZ, María"] * 2
        name.value = ""
        console.app.screen.query_one("#filter-id", Input).value = "DEMO0005"
        await console.settle()
        assert names(table) == ["OKONKWO, Chinedu"]
        console.app.screen.query_one("#filter-id", Input).value = ""
        console.app.screen.query_one("#filter-accession", Input).value = "A2600001"
        await console.settle()
        assert [str(table.get_row_at(i)[5]) for i in range(table.row_count)] == ["A2600001"]


async def test_filter_by_date_preset_and_modality(demo_config, console_factory) -> None:
    """Date presets count from the console's day; the modality select keeps studies holding it."""
    async with console_factory(demo_config) as console:
        screen = console.app.screen
        table = screen.query_one(StudyTable)
        screen.query_one("#filter-date", Select).value = "today"
        await console.settle()
        assert sorted(names(table)) == ["MÜLLER, Jürgen", "SMITH, John Q"]
        screen.query_one("#filter-date", Select).value = "last-7-days"
        await console.settle()
        dates = [str(table.get_row_at(i)[2])[:10] for i in range(table.row_count)]
        assert len(dates) == 10 and min(dates) >= "2026-11-14"
        screen.query_one("#filter-modality", Select).value = "CR"
        await console.settle()
        assert table.row_count == 2  # CR in the last 7 days
        assert all(str(table.get_row_at(i)[3]) == "CR" for i in range(table.row_count))
        await console.pilot.press("x")  # clear every filter
        await console.settle()
        assert table.row_count == 20


async def test_custom_date_range_validates(demo_config, console_factory) -> None:
    """A custom range applies when both ends are dates; a bad date is marked and not applied."""
    async with console_factory(demo_config) as console:
        screen = console.app.screen
        table = screen.query_one(StudyTable)
        screen.query_one("#filter-date", Select).value = "custom"
        await console.settle()
        start = screen.query_one("#filter-from", Input)
        assert start.display and start.has_focus
        await console.type("2026-11-01")
        await console.pilot.press("tab")
        await console.type("2026-11-05")
        await console.pilot.press("enter")
        await console.settle()
        dates = sorted(str(table.get_row_at(i)[2])[:10] for i in range(table.row_count))
        assert dates == ["2026-11-02", "2026-11-05"]
        screen.query_one("#filter-to", Input).value = "2026-13-45"
        await console.settle()
        assert screen.query_one("#filter-to", Input).has_class("-invalid")
        assert table.row_count == 2


async def test_select_study_shows_its_series(demo_config, console_factory) -> None:
    """Moving the cursor to a study lists its series; Tab moves to the series table."""
    async with console_factory(demo_config) as console:
        screen = console.app.screen
        series = screen.query_one(SeriesTable)
        assert series.row_count == 3  # SMITH's MR brain: Ax T1, Ax T2, Sag FLAIR
        await console.pilot.press("down")
        await console.settle()
        shown = console.posted(ArchiveScreen.SeriesShown)[-1]
        assert shown.study_instance_uid == screen.query_one(StudyTable).selected_uid
        assert [str(series.get_row_at(i)[2]) for i in range(series.row_count)] == [
            "Scout",
            "Axial 5mm",
            "Lung 1mm",
        ]
        assert "MÜLLER, Jürgen" in str(screen.query_one("#series-title").render())
        await console.pilot.press("tab")
        assert series.has_focus


@pytest.mark.slow
async def test_enter_opens_the_viewer(demo_config, console_factory) -> None:
    """Enter on a study opens its selected series in the viewer, Enter on a series that series."""
    async with console_factory(demo_config) as console:
        archive = console.app.screen
        await console.pilot.press("down")  # MÜLLER's CT: Scout, Axial 5mm, Lung 1mm
        await console.settle()
        await console.pilot.press("enter")
        await console.settle()
        viewer = console.app.screen
        assert isinstance(viewer, ViewerScreen)
        assert {i.series_instance_uid for i in viewer.instances} == {archive.series_uid}
        first = archive.series_uid
        await console.pilot.press("escape")
        await console.settle()
        assert console.app.screen is archive and not archive.has_class("-show-instance")
        await console.pilot.press("tab", "down")  # the series table, second series
        await console.settle()
        assert archive.series_uid != first
        await console.pilot.press("enter")
        await console.settle()
        viewer = console.app.screen
        assert isinstance(viewer, ViewerScreen)
        assert {i.series_instance_uid for i in viewer.instances} == {archive.series_uid}
        await console.pilot.press("escape")
        await console.settle()
        await console.pilot.press("shift+tab", "enter")  # the study again: its selected series
        await console.settle()
        viewer = console.app.screen
        assert isinstance(viewer, ViewerScreen)
        assert {i.series_instance_uid for i in viewer.instances} == {archive.series_uid}
        assert archive.series_uid != first


async def test_viewer_opens_at_the_previewed_image_or_where_the_panel_stepped(
    demo_config, console_factory
) -> None:
    """The viewer opens at the middle image the preview shows; after [ / ] at that instance."""
    async with console_factory(demo_config, size=(200, 60)) as console:
        await console.pilot.press("down")  # MÜLLER's CT
        await console.settle()
        await console.pilot.press("tab", "down")  # a series of several images
        await console.settle()
        await console.pilot.press("enter")
        await console.settle()
        viewer = console.app.screen
        assert isinstance(viewer, ViewerScreen) and len(viewer.instances) > 2
        assert viewer.state.index == len(viewer.instances) // 2
        await console.pilot.press("escape")
        await console.settle()
        await console.pilot.press("right_square_bracket")
        await console.settle()
        await console.pilot.press("enter")
        await console.settle()
        viewer = console.app.screen
        assert isinstance(viewer, ViewerScreen)
        assert viewer.state.index == 1


async def test_enter_on_a_study_whose_series_are_loading(demo_config, console_factory) -> None:
    """Enter on a study before its series are listed opens the viewer on its first series."""
    async with console_factory(demo_config) as console:
        archive = console.app.screen
        table = archive.query_one(StudyTable)
        await console.settle()
        uid = table.coordinate_to_cell_key(Coordinate(1, 0)).row_key.value
        archive._select_study(None)  # as if the cursor had just arrived: no series yet
        table.move_cursor(row=1)
        table.action_select_cursor()
        await console.settle()
        viewer = console.app.screen
        assert isinstance(viewer, ViewerScreen)
        first = archive.context.browser.series(uid)[0].series_instance_uid
        assert {i.series_instance_uid for i in viewer.instances} == {first}


async def test_paging_and_sorting(demo_config, console_factory) -> None:
    """Pages of 6: n/p, running off the bottom, G/g; a header click sorts by that column."""
    async with console_factory(demo_config, page_size=6) as console:
        screen = console.app.screen
        table = screen.query_one(StudyTable)
        first = names(table)
        assert len(first) == 6 and "Studies 1–6 of 20" in title(console)
        await console.pilot.press("n")
        await console.settle()
        assert "Studies 7–12 of 20" in title(console)
        assert console.posted(ArchiveScreen.PageShown)[-1].reason == "next"
        second = names(table)
        assert not set(zip(second, range(6), strict=True)) & set(zip(first, range(6), strict=True))
        for _ in range(6):  # run off the bottom: the third page, cursor on its first row
            await console.pilot.press("down")
        await console.settle()
        assert "Studies 13–18 of 20" in title(console) and table.cursor_row == 0
        await console.pilot.press("G")
        await console.settle()
        assert "Studies 15–20 of 20" in title(console)
        await console.pilot.press("up")  # cursor at the bottom of the last page
        await console.pilot.press("p")
        await console.settle()
        assert "Studies 9–14 of 20" in title(console)
        await console.pilot.press("g")
        await console.settle()
        assert names(table) == first
        await console.pilot.click(StudyTable, offset=(2, 0))  # the Patient header
        await console.settle()
        assert screen.studies.sort == "patient_name" and not screen.studies.descending
        assert names(table)[0] == "DUBOIS, Camille"
        await console.pilot.press("r")
        await console.settle()
        assert names(table)[0] == "TANAKA, Yuki"
        assert "by name ▼" in title(console)


def _new_study(config, seed: int) -> list[bytes]:  # type: ignore[no-untyped-def]
    """The instances of the first demo study made with another seed (a new study of MÜLLER)."""
    blobs: list[bytes] = []
    first_uid = ""
    for ds in demo_datasets(TODAY, seed=seed):
        if blobs and ds.StudyInstanceUID != first_uid:
            break
        first_uid = ds.StudyInstanceUID
        buffer = io.BytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)
        blobs.append(buffer.getvalue())
    return blobs


async def test_live_arrival_keeps_filter_and_cursor(demo_config, console_factory) -> None:
    """A study stored through the ingest path appears via the change feed; cursor, filter stay."""
    async with console_factory(demo_config) as console:
        screen = console.app.screen
        table = screen.query_one(StudyTable)
        screen.query_one("#filter-name", Input).value = "müller"
        await console.settle()
        await console.pilot.press("down")
        await console.settle()
        kept = table.selected_uid
        assert table.row_count == 3 and table.cursor_row == 1
        ingestor = Ingestor(demo_config, use_database(demo_config.effective_database_url))
        try:
            for blob in _new_study(demo_config, seed=7):
                ingestor.store_bytes(blob, "MODALITY")
        finally:
            ingestor.close()
        console.app.poll_changes()
        await console.settle()
        arrived = console.posted(ChangesArrived)
        assert arrived and "study.created" in arrived[-1].kinds
        assert table.row_count == 4  # the filter still applies: only MÜLLER's studies
        assert names(table) == ["MÜLLER, Jürgen"] * 4
        assert table.selected_uid == kept and table.cursor_row == 2
        assert screen.query_one("#filter-name", Input).value == "müller"
        assert "of 4" in title(console)


async def test_arrivals_above_keep_the_cursor_on_screen(demo_config, console_factory) -> None:
    """Studies arriving above the cursor on the last visible row push it down: the view follows
    just enough to keep the selected study on screen."""
    async with console_factory(demo_config, size=(80, 24)) as console:
        table = console.app.screen.query_one(StudyTable)
        visible = table.scrollable_content_region.height - 1  # minus the header row
        assert table.row_count > visible + 2, "the page must be longer than the view"
        table.move_cursor(row=visible - 1, animate=False)
        await console.settle()
        kept = table.selected_uid
        assert table.scroll_y == 0
        ingestor = Ingestor(demo_config, use_database(demo_config.effective_database_url))
        try:
            for seed in (7, 8):
                for blob in _new_study(demo_config, seed=seed):
                    ingestor.store_bytes(blob, "MODALITY")
        finally:
            ingestor.close()
        console.app.poll_changes()
        await console.settle()
        assert table.selected_uid == kept and table.cursor_row == visible + 1
        assert table.scroll_y <= table.cursor_row < table.scroll_y + visible


@pytest.mark.slow
async def test_tag_tree_and_search(demo_config, console_factory) -> None:
    """t on a series opens the tags; search by keyword, by tag and inside sequences."""
    async with console_factory(demo_config) as console:
        screen = console.app.screen
        await console.pilot.press("down", "tab", "down", "t")  # MÜLLER CT, series 2
        await console.settle()
        panel = screen.query_one(InstancePanel)
        assert screen.has_class("-show-instance")
        assert panel.current is not None and panel.current.instance_number == 1
        tree = screen.query_one(TagTree)
        keywords = [child.data.keyword for child in tree.root.children]
        assert "PatientName" in keywords and "PixelData" in keywords
        patient = next(c for c in tree.root.children if c.data.keyword == "PatientName")
        assert "MÜLLER^Jürgen" in str(patient.label)
        pixel = next(c for c in tree.root.children if c.data.keyword == "PixelData")
        assert "<8192 bytes>" in str(pixel.label)
        await console.pilot.press("f")
        assert screen.query_one("#tag-search", Input).has_focus
        await console.type("0008,0060")
        await console.settle()
        assert [c.data.keyword for c in tree.root.children] == ["Modality"]
        search = screen.query_one("#tag-search", Input)
        search.value = "codemeaning"
        await console.settle()
        (sequence,) = tree.root.children
        assert sequence.data.keyword == "ProcedureCodeSequence" and sequence.is_expanded
        (item,) = sequence.children
        assert [c.data.keyword for c in item.children] == ["CodeMeaning"]
        assert console.posted(InstancePanel.TagsShown)[-1].search == "codemeaning"
        search.value = ""
        await console.settle()
        await console.pilot.press("escape")  # leave the search box
        await console.pilot.press("right_square_bracket")
        await console.settle()
        assert panel.current is not None and panel.current.instance_number == 2
        assert "Instance 2/6" in str(screen.query_one("#instance-title").render())


async def test_narrow_terminal_opens_tags_over_the_lists(demo_config, console_factory) -> None:
    """At 80x24 the tag panel is hidden until opened, then replaces the lists; Escape returns."""
    async with console_factory(demo_config, size=(80, 24)) as console:
        screen = console.app.screen
        panel = screen.query_one(InstancePanel)
        assert screen.has_class("-narrow") and not panel.display or panel.region.width == 0
        await console.pilot.press("t")
        await console.settle()
        assert panel.region.width == 80
        assert screen.query_one("#lists").region.width == 0
        await console.pilot.press("escape")
        assert panel.region.width == 0 and screen.query_one(StudyTable).has_focus


async def test_missing_file_shows_the_error_dialog(demo_config, console_factory) -> None:
    """An instance whose file vanished shows the one error dialog with its title; Escape closes."""
    use_database(demo_config.effective_database_url)
    for row in Instance.select():
        (Path(demo_config.storage_path) / row.path).unlink()
    async with console_factory(demo_config) as console:
        await console.pilot.press("t")
        await console.settle()
        dialog = console.app.screen
        assert isinstance(dialog, ErrorDialog)
        assert dialog.error.title == "Missing file"
        assert "is missing" in str(dialog.query_one("#error-message").render())
        await console.pilot.press("escape")
        assert isinstance(console.app.screen, ArchiveScreen)


async def test_error_dialog_shows_dicom_status(demo_config, console_factory) -> None:
    """A network error carrying a DICOM status shows it in hex under the message."""
    async with console_factory(demo_config) as console:
        console.app.show_error(NetworkError("C-MOVE refused", "Retrieve failed", status=0xA801))
        await console.settle()
        dialog = console.app.screen
        assert isinstance(dialog, ErrorDialog)
        assert str(dialog.query_one("#error-status").render()) == "DICOM status 0xA801"
        await console.pilot.press("enter")
        assert not isinstance(console.app.screen, ErrorDialog)


async def test_help_and_palette_list_every_action(demo_config, console_factory) -> None:
    """The help screen and the command palette both list every key binding with a description."""
    async with console_factory(demo_config) as console:
        screen = console.app.screen
        wanted = {b.description for b in [*ArchiveScreen.BINDINGS, *console.app.BINDINGS]}
        palette = {c.title for c in console.app.get_system_commands(screen)}
        assert wanted <= palette
        await console.pilot.press("question_mark")
        help_screen = console.app.screen
        assert isinstance(help_screen, HelpScreen)
        listed = {description for _keys, description, _where in help_screen.rows}
        assert wanted <= listed
        await console.pilot.press("escape")
        assert isinstance(console.app.screen, ArchiveScreen)


async def test_log_screen_shows_log_lines(demo_config, console_factory) -> None:
    """Log records reach the log screen (never the terminal)."""
    async with console_factory(demo_config) as console:
        logging.getLogger("tui_pacs.test").warning("modality CT1 said hello")
        await console.pilot.press("L")
        await console.settle()
        log_screen = console.app.screen
        assert isinstance(log_screen, LogScreen)
        lines = [str(line.text) for line in log_screen.query_one(RichLog).lines]
        assert any("modality CT1 said hello" in line for line in lines)
        await console.pilot.press("escape")
        assert isinstance(console.app.screen, ArchiveScreen)


async def test_console_starts_a_node_and_confirms_quit(demo_config, console_factory) -> None:
    """With no node alive the console starts one (status bar shows it); quitting asks first."""
    config = replace(demo_config, ae_title="CONSOLE_NODE")
    async with console_factory(config, start_node=True) as console:
        app = console.app
        assert app.hosted_node is not None
        bar = str(app.screen.query_one(NodeStatusBar).render())
        assert "CONSOLE_NODE" in bar and f":{app.hosted_node.port}" in bar
        assert "this console" in bar and "0 jobs running" in bar
        await console.pilot.press("q")
        assert isinstance(app.screen, ConfirmDialog)
        await console.pilot.press("n")
        assert app.is_running and app.hosted_node is not None
        await console.pilot.press("q", "y")
        await console.settle()
        await app.workers.wait_for_complete()
        await console.pilot.pause()
        assert app.hosted_node is None
