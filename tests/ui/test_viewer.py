"""Viewer and preview pane under Pilot: scroll, window keys, presets, invert, zoom, cine, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

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


@pytest.mark.slow
async def test_viewer_scrolls_windows_presets_inverts_zooms(demo_config, console_factory) -> None:
    """Down/up scroll, w/C window, 1 a preset, i inverts, + zooms, r resets."""
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


def us_cine(folder: Path, frames: int = 6) -> Path:
    """A small multi-frame ultrasound loop (8-bit, a bright bar moving frame by frame)."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "US"
    ds.PatientName = "CINE^Test"
    ds.Rows, ds.Columns, ds.NumberOfFrames = 40, 48, frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.FrameTime = "40"
    pixels = np.zeros((frames, 40, 48), np.uint8)
    for k in range(frames):
        pixels[k, :, k * 8 : k * 8 + 8] = 200
    ds.PixelData = pixels.tobytes()
    path = folder / "cine.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def file_row(path: Path, sop_class: str, frames: int = 1) -> InstanceSummary:
    """An instance row for a file outside the archive (the renderer is told where it is)."""
    from datetime import datetime

    return InstanceSummary(
        "1.2.3", "1.2.3.4", sop_class, 1, 40, 48, frames, ExplicitVRLittleEndian, 100,
        datetime(2026, 1, 1),
    )  # fmt: skip


async def view_file(console, path: Path, sop_class: str) -> ViewerScreen:
    """Push a viewer on one file (the shared renderer resolves every row to it)."""
    from tui_pacs.ui.screens.viewer import shared_renderer

    shared_renderer(console.app).resolve = lambda source: path  # type: ignore[method-assign]
    viewer = ViewerScreen([file_row(path, sop_class)])
    await console.app.push_screen(viewer)
    return viewer


async def test_viewer_cine_play_pause(demo_config, console_factory, tmp_path) -> None:
    """Right steps a frame; space plays a US loop and pauses it; f is faster."""
    path = us_cine(tmp_path)
    async with console_factory(demo_config) as console:
        viewer = await view_file(console, path, "1.2.840.10008.5.1.4.1.1.3.1")
        first = await shown(console)
        assert viewer.frames == 6 and first.state.frame == 0
        await console.pilot.press("right")
        assert (await shown(console)).result.annotations.frame == (2, 6)
        await console.pilot.press("f")
        assert viewer.fps == 20
        await console.pilot.press("space")
        assert viewer.playing
        seen = {viewer.state.frame}
        for _ in range(300):
            await console.pilot.pause(0.01)
            seen.add(viewer.state.frame)
            if len(seen) >= 3:
                break
        assert len(seen) >= 3
        await console.pilot.press("space")
        assert not viewer.playing
        await console.settle()
        stopped = viewer.state.frame
        await console.pilot.pause(0.2)
        assert viewer.state.frame == stopped


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


async def test_viewer_shows_a_broken_file_as_a_message(
    demo_config, console_factory, tmp_path
) -> None:
    """A file whose pixel data cannot be decoded is a message in the pane, not a crash."""
    path = broken_instance(tmp_path)
    async with console_factory(demo_config) as console:
        viewer = await view_file(console, path, "1.2.840.10008.5.1.4.1.1.2")
        done = await shown(console)
        assert done.error and done.result is None
        view = viewer.image_view
        assert view.error and view.message == done.error
        assert done.error in str(view.query_one(".image-message").render())


async def test_preview_pane_shows_the_middle_image(demo_config, console_factory) -> None:
    """Resting on a series draws its middle image in the preview pane, thumbnails below."""
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


def fills(view: ImageView) -> bool:
    """The view's image is fitted to its current pixel box (touches two of its sides)."""
    box = view.pixel_box()
    image = view.image
    return image is not None and (image.width == box[0] or image.height == box[1])


async def test_preview_follows_the_pane_size(demo_config, console_factory) -> None:
    """The preview is rendered again when its pane is laid out or resized (not left at 1x2)."""
    async with console_factory(demo_config, size=(80, 24)) as console:
        screen = console.app.screen
        await console.pilot.press("t")  # narrow: the panel (and its preview) appear now
        await console.settle()
        view = screen.query_one("#preview-image", ImageView)
        assert view.image is not None and view.image.height > 10 and fills(view)
        small = view.image.size
        await console.pilot.resize_terminal(110, 40)
        await console.settle()
        assert fills(view) and view.image.size != small


async def test_preview_pane_explains_a_broken_file(demo_config, console_factory) -> None:
    """A series whose files are damaged shows the reason in the preview pane, in red, no crash."""
    from tui_pacs.ui.screens.viewer import shared_renderer

    async with console_factory(demo_config) as console:
        screen = console.app.screen
        table = screen.query_one(SeriesTable)
        uid = table.coordinate_to_cell_key((1, 0)).row_key.value
        renderer = shared_renderer(console.app)
        # Headers stay readable (the tag panel reads them); the pixel data is cut short.
        for row in renderer.series_images(uid):
            path = renderer.resolve(row)
            ds = dcmread(path)
            ds.PixelData = ds.PixelData[:10]
            ds.save_as(path)
        table.focus()
        await console.pilot.press("down")
        await console.settle()
        shown_msg = console.posted(PreviewPane.Shown)[-1]
        assert shown_msg.series_instance_uid == uid and shown_msg.error
        view = screen.query_one("#preview-image", ImageView)
        assert view.error and view.image is None
        assert shown_msg.error in str(view.query_one(".image-message").render())
        assert console.app.screen is screen


async def test_viewer_keys_in_help_and_palette(demo_config, console_factory, tmp_path) -> None:
    """The viewer's keys are listed by the help screen and offered by the command palette."""
    from tui_pacs.ui.screens.help import HelpScreen, binding_rows

    path = us_cine(tmp_path)
    async with console_factory(demo_config) as console:
        viewer = await view_file(console, path, "1.2.840.10008.5.1.4.1.1.3.1")
        await shown(console)
        described = {row[1] for row in binding_rows(viewer)}
        assert {
            "Invert",
            "Zoom in",
            "Cine",
            "Preset 1",
            "Narrower",
            "Pan left",
            "Reset",
        } <= described
        titles = {c.title for c in console.app.get_system_commands(viewer)}
        assert {"Invert", "Cine", "Next image"} <= titles
        await console.pilot.press("question_mark")
        await console.settle()
        assert isinstance(console.app.screen, HelpScreen)


async def test_viewer_plots_an_ecg(demo_config, console_factory) -> None:
    """A 12-lead ECG is plotted into the image pane: green traces on black, no error."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    path = Path(get_testdata_file("waveform_ecg.dcm"))
    sop_class = str(dcmread(path, stop_before_pixels=True).SOPClassUID)
    async with console_factory(demo_config) as console:
        viewer = await view_file(console, path, sop_class)
        await console.settle()
        view = viewer.image_view
        assert not view.error and view.image is not None
        pixels = np.asarray(view.image)
        assert (pixels[..., 1] == 255).sum() > view.image.width  # traces drawn across the plot
