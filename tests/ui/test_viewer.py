"""Viewer and preview pane under Pilot: scroll, window keys, presets, invert, zoom, cine, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tui_pacs.imaging.presets import Window
from tui_pacs.model import InstanceSummary
from tui_pacs.ui.screens.archive import ArchiveScreen
from tui_pacs.ui.screens.viewer import ViewerScreen
from tui_pacs.ui.widgets.image_view import HalfcellCanvas, ImageView
from tui_pacs.ui.widgets.preview import PreviewPane
from tui_pacs.ui.widgets.series_table import SeriesTable
from tui_pacs.ui.widgets.study_table import StudyTable

pytestmark = pytest.mark.asyncio


async def open_viewer(console, *, study_downs: int = 0, series_downs: int = 0) -> ViewerScreen:
    """Move to a study and a series of the demo archive and press v."""
    screen = console.app.screen
    screen.query_one(StudyTable).focus()
    for _ in range(study_downs):
        await console.pilot.press("down")
    await console.settle()
    screen.query_one(SeriesTable).focus()
    for _ in range(series_downs):
        await console.pilot.press("down")
    await console.settle()
    await console.pilot.press("v")
    await console.settle()
    viewer = console.app.screen
    assert isinstance(viewer, ViewerScreen)
    return viewer


async def shown(console) -> ViewerScreen.Rendered:
    """The last frame the viewer drew, after every worker finished."""
    await console.settle()
    return console.posted(ViewerScreen.Rendered)[-1]


async def test_viewer_scrolls_windows_presets_inverts_zooms(demo_config, console_factory) -> None:
    """Down/up step through the series, w/c change the window, 1 picks a preset, i inverts, +/- zoom, r resets."""
    async with console_factory(demo_config) as console:
        viewer = await open_viewer(console, study_downs=1, series_downs=1)  # MÜLLER CT, Axial 5mm
        first = await shown(console)
        assert first.result is not None and not first.error
        assert isinstance(viewer.image_view.children[0], HalfcellCanvas)
        index = viewer.state.index
        await console.pilot.press("down")
        moved = await shown(console)
        assert moved.state.index == index + 1
        assert moved.result.annotations.image_position == (index + 2, len(viewer.instances))
        await console.pilot.press("up")
        assert (await shown(console)).state.index == index
        window = moved.result.frame.voi.window
        await console.pilot.press("w")
        narrower = (await shown(console)).result.frame.voi.window
        assert narrower.window_width == pytest.approx(window.window_width * 0.8)
        await console.pilot.press("C")
        higher = (await shown(console)).result.frame.voi.window
        assert higher.window_center > narrower.window_center
        await console.pilot.press("1")
        preset = await shown(console)
        assert preset.result.annotations.preset == preset.result.frame.presets[0].label
        before = preset.result.frame.pixels.astype(int)
        await console.pilot.press("i")
        inverted = await shown(console)
        assert inverted.state.invert
        assert (inverted.result.frame.pixels.astype(int) == 255 - before).all()
        await console.pilot.press("plus")
        zoomed = await shown(console)
        assert zoomed.result.viewport.zoom > preset.result.viewport.zoom
        await console.pilot.press("r")
        reset = await shown(console)
        assert reset.state.zoom == 1.0 and not reset.state.invert and reset.state.window is None
        await console.pilot.press("escape")
        await console.settle()
        assert isinstance(console.app.screen, ArchiveScreen)


async def test_viewer_cine_play_pause(demo_config, console_factory) -> None:
    """Space plays a multi-frame US loop (the frame advances) and pauses it again."""
    async with console_factory(demo_config) as console:
        renderer_studies = console.app.screen.query_one(StudyTable)
        # Find the US study of the demo archive by its modality column.
        downs = next(
            i for i in range(renderer_studies.row_count) if "US" in str(renderer_studies.get_row_at(i))
        )
        viewer = await open_viewer(console, study_downs=downs)
        first = await shown(console)
        if viewer.frames <= 1:
            pytest.skip("the demo US has single-frame images")
        await console.pilot.press("space")
        assert viewer.playing
        for _ in range(200):
            await console.pilot.pause(0.02)
            if viewer.state.frame != first.state.frame:
                break
        assert viewer.state.frame != first.state.frame
        await console.pilot.press("space")
        assert not viewer.playing


def broken_instance(folder: Path) -> Path:
    """A CT header whose pixel data is far too short."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = b"\0" * 100
    path = folder / "broken.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


async def test_viewer_shows_a_broken_file_as_a_message(demo_config, console_factory, tmp_path) -> None:
    """A file whose pixel data cannot be decoded is a message in the pane, not a crash."""
    from datetime import datetime

    path = broken_instance(tmp_path)
    row = InstanceSummary(
        "1.2.3", "1.2.3.4", "1.2.840.10008.5.1.4.1.1.2", 1, 64, 64, 1, ExplicitVRLittleEndian, 100, datetime(2026, 1, 1)
    )
    async with console_factory(demo_config) as console:
        viewer = ViewerScreen([row])
        renderer = __import__("tui_pacs.ui.screens.viewer", fromlist=["x"]).shared_renderer(console.app)
        renderer.resolve = lambda source: path  # type: ignore[method-assign]
        await console.app.push_screen(viewer)
        done = await shown(console)
        assert done.error and done.result is None
        view = viewer.image_view
        assert view.error and view.message == done.error


async def test_preview_pane_shows_the_middle_image(demo_config, console_factory) -> None:
    """Resting on a series draws its middle image in the archive's preview pane, thumbnails below."""
    async with console_factory(demo_config) as console:
        screen = console.app.screen
        screen.query_one(SeriesTable).focus()
        await console.pilot.press("down")
        await console.settle()
        shown_msgs = console.posted(PreviewPane.Shown)
        assert shown_msgs and not shown_msgs[-1].error
        assert shown_msgs[-1].series_instance_uid == screen.series_uid
        pane = screen.query_one(PreviewPane)
        view = pane.query_one("#preview-image", ImageView)
        assert view.image is not None
        box = view.pixel_box()
        assert view.image.width <= box[0] and view.image.height <= box[1]
        assert len(pane.query(".thumb")) == screen.query_one(SeriesTable).row_count
