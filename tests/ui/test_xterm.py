"""Images in a real terminal: xterm as a VT340 under Xvfb, screenshots compared with our pixels.

Two levels: the whole ``tui-pacs`` console (its archive screen previews a synthetic CT, located
on screen from the layout and the terminal's cell size), and the image widget alone in a small
app (a pattern with every grey level, unscaled, at the top-left cell).

Sixel sends colours in percent: a grey level ``v`` goes out as ``round(v * 100 / 255)`` and
xterm turns it back into 8 bits, so a level comes back within 1 of what we rendered; the tests
allow exactly that.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread

from tests.interop.synth import make_ct, new_uid
from tests.peers import free_port, require, write_node_config
from tests.ui.conftest import make_app
from tui_pacs.config import load_config
from tui_pacs.imaging.geometry import fit_image
from tui_pacs.imaging.pipeline import render_frame
from tui_pacs.ui import graphics
from tui_pacs.ui.graphics import Graphics, GraphicsMode
from tui_pacs.ui.widgets.image_view import ImageView

pytestmark = [pytest.mark.interop, pytest.mark.slow]

XTERM, XVFB, IMPORT = Path("/usr/bin/xterm"), Path("/usr/bin/Xvfb"), Path("/usr/bin/import")
ROOT = Path(__file__).resolve().parents[2]
#: The console's terminal, in cells: wide enough for the instance panel (and its preview).
COLUMNS, ROWS = 200, 55
#: Sixel's colour precision (percent): the most a level may move on the way to the screen.
TOLERANCE = 1


def pattern() -> np.ndarray:
    """120x84 grey test pattern: a ramp over every level, a black and a white block, a gradient."""
    y, x = np.mgrid[0:84, 0:120]
    img = (x * 255 // 119).astype(np.uint8)
    img[30:54, 10:40] = 0
    img[30:54, 80:110] = 255
    img[60:84] = (y[60:84] * 255 // 83).astype(np.uint8)
    return img


def ct_pixels(instance_number: int) -> np.ndarray:
    """512x512 stored values (HU + 1024) of a CT test object; window 40/400 spans 864..1264.

    A ramp over the whole window (every output level), a black and a white block, a grey disc,
    a 4-pixel checkerboard (averaged when shrunk), a vertical ramp and a corner marker; the
    other instances of the series are offset so the preview must show the middle one.
    """
    y, x = np.mgrid[0:512, 0:512]
    img = np.zeros((512, 512), dtype=np.int32)  # air: black
    img[40:140] = 864 + x[40:140] * 400 // 511
    img[170:260, 40:200] = 1400  # bone: white
    img[170:260, 312:472] = 500  # lung: black
    disc = (x - 256) ** 2 + (y - 360) ** 2 < 70**2
    img[disc] = 1064  # soft tissue, the window's centre
    checker = ((x // 4 + y // 4) % 2).astype(bool)
    img[300:460, 20:150] = np.where(checker[300:460, 20:150], 1264, 864)
    img[290:500, 380:480] = 864 + (y[290:500, 380:480] - 290) * 400 // 209
    img[0:24, 0:24] = 1300  # top-left marker: orientation
    return (img + (instance_number - 2) * 60).clip(0, 4095).astype(np.uint16)


def write_ct_series(folder: Path) -> list[Path]:
    """Three 512x512 CT images of one study and series; the middle one carries the test object."""
    folder.mkdir(parents=True)
    study, series = new_uid(), new_uid()
    paths = []
    for number in (1, 2, 3):
        ds = make_ct(study, series, new_uid(), 512, 512, instance_number=number,
                     patient_name="XTERM^Preview", patient_id="XTERM001")  # fmt: skip
        ds.PixelData = ct_pixels(number).astype("<u2").tobytes()
        path = folder / f"CT{number}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def tui_pacs_command() -> list[str]:
    """The installed console script next to this Python, else ``python -m tui_pacs``."""
    script = Path(sys.executable).with_name("tui-pacs")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tui_pacs"]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    """Poll ``condition`` until it returns a true value (a screen has nothing to wait on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


class XTerm:
    """An xterm (``-ti vt340``, no borders, at the top-left) on a private Xvfb display."""

    def __init__(self, display: int, env: dict[str, str]) -> None:
        self.display = display
        self.env = env

    def screenshot(self, path: Path) -> np.ndarray:
        """The whole screen as an (h, w, 3) int array (ImageMagick ``import -window root``)."""
        subprocess.run(
            [str(IMPORT), "-display", f":{self.display}", "-window", "root", str(path)],
            env=self.env, check=True, timeout=20,
        )  # fmt: skip
        return np.asarray(Image.open(path).convert("RGB")).astype(int)


@contextmanager
def xterm(command: str, geometry: str, screen: str = "640x480x24") -> Iterator[XTerm]:
    """Run ``command`` (a shell line) in xterm as a VT340 with 256 colour registers on Xvfb."""
    for path, what in ((XTERM, "xterm"), (XVFB, "Xvfb"), (IMPORT, "ImageMagick import")):
        require(path, what)
    # Xvfb picks a free display itself and writes its number once it accepts clients (two
    # test workers scanning for free numbers could pick the same one).
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(
        [str(XVFB), "-displayfd", str(write_end), "-screen", "0", screen, "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_end,),
    )
    os.close(write_end)
    term = None
    try:
        with os.fdopen(read_end, "rb") as announced:
            ready, _, _ = select.select([announced], [], [], 20)
            number = announced.readline().strip() if ready else b""
        assert number.isdigit(), "Xvfb did not start"
        display = int(number)
        env = {**os.environ, "DISPLAY": f":{display}"}
        # pytest-xdist workers export COLUMNS=80 LINES=24, which Textual would believe.
        for name in ("TUI_PACS_GRAPHICS", "TUI_PACS_CONFIG", "COLUMNS", "LINES"):
            env.pop(name, None)
        term = subprocess.Popen(
            [
                str(XTERM), "-ti", "vt340", "-b", "0", "-bw", "0", "-geometry", geometry,
                "-bg", "black", "-fg", "white", "-fn", "fixed",
                "-xrm", "XTerm*numColorRegisters: 256",
                "-xrm", "XTerm*decTerminalID: vt340",
                "-e", "/bin/sh", "-c", command,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        yield XTerm(display, env)
    finally:
        for proc in (term, xvfb):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


async def preview_layout(
    config_path: Path, cell: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int], Image.Image]:
    """Where the archive screen puts the preview image at COLUMNS x ROWS, and the image itself.

    The same console, run under Pilot with the same store and the cell size xterm reported
    (sixel), lays the screen out as the real one does.

    Returns:
        (cell, box, image): the top-left cell of the picture, the preview's pixel box (its
        cells times the cell size) and the picture the console rendered for it.
    """
    from tui_pacs.ui.widgets.preview import PreviewPane

    before = graphics.current()
    graphics.set_current(Graphics(GraphicsMode.SIXEL, cell[0], cell[1], "test"))
    app = make_app(load_config(config_path), start_node=False)
    try:
        async with app.run_test(size=(COLUMNS, ROWS)) as pilot:
            view = app.screen.query_one("#preview-image", ImageView)
            for _ in range(200):  # bounded: the preview worker needs a few event-loop turns
                await app.workers.wait_for_complete()
                await pilot.pause()
                box, image = view.pixel_box(), view.image
                placed = image is not None and view.query(".image") and box[0] * box[1] > 1
                # Laid out too: a just-mounted image widget has an empty region at (0, 0), and
                # one still sized for the previous image sits elsewhere; the final one holds
                # exactly the image's cells.
                at = view.query_one(".image").content_region if placed else None
                cells = (
                    (-(-image.width // cell[0]), -(-image.height // cell[1])) if placed else None
                )
                laid_out = (
                    at is not None
                    and view.region.contains_region(at)
                    and (at.width, at.height) == cells
                )
                if laid_out and (image.width == box[0] or image.height == box[1]):  # fitted
                    break
            else:
                raise AssertionError("the preview never showed under Pilot")
            pane = app.screen.query_one(PreviewPane)
            assert not pane.error, pane.error
            at = view.query_one(".image").content_region
            return (at.x, at.y), view.pixel_box(), view.image
    finally:
        app.stop_node()
        graphics.set_current(before)


@pytest.mark.asyncio
async def test_console_preview_in_xterm_vt340(tmp_path: Path) -> None:
    """The real console in xterm -ti vt340 previews a CT at its cell position within 1 level."""
    port = free_port()
    store = tmp_path / "store"
    config_path = write_node_config(store, port, ae_title="XTERM_PACS")
    files = write_ct_series(tmp_path / "ct")
    imported = subprocess.run(
        [*tui_pacs_command(), "--config", str(config_path), "import", str(tmp_path / "ct")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stdout + imported.stderr

    probe_report = tmp_path / "probe.txt"
    console = " ".join([*tui_pacs_command(), "--config", str(config_path), "--graphics", "sixel"])
    command = (
        f"cd {ROOT} && {sys.executable} -m tests.ui.xterm_show --probe {probe_report} "
        f"&& exec {console}"
    )
    with xterm(command, f"{COLUMNS}x{ROWS}+0+0", screen="1280x800x24") as term:
        probed = wait_for(
            lambda: probe_report.exists() and probe_report.read_text(), 30, "the probe"
        )
        mode, width, height = probed.split()
        assert mode == "sixel", probed  # a VT340 answers the device attributes with sixel
        cell = (int(width), int(height))

        (column, row), box, shown = await preview_layout(config_path, cell)
        # Our pipeline, independently of the console: the middle image, its own window, fitted
        # into the preview's pixel box.
        middle = dcmread(files[1])
        rendered = render_frame(middle)
        expected_image = fit_image(rendered.to_pil(), box, aspect=rendered.pixel_aspect)
        assert np.array_equal(np.asarray(shown), np.asarray(expected_image))  # same pixels
        expected = np.asarray(expected_image).astype(int)
        h, w = expected.shape
        assert min(h, w) >= 150, (w, h)  # shrunk from 512, not a thumbnail
        left, top = column * cell[0], row * cell[1]

        shot = tmp_path / "shot.png"
        last: dict[str, Any] = {}

        def preview_on_screen() -> bool:
            screen = term.screenshot(shot)
            area = screen[top : top + h, left : left + w]
            if area.shape[:2] != (h, w):
                return False
            diff = np.abs(area - expected[..., None])
            last["max"], last["over"] = int(diff.max()), int((diff > TOLERANCE).sum())
            return last["max"] <= TOLERANCE

        try:
            wait_for(preview_on_screen, 60, "the preview on screen", step=0.5)
        except AssertionError:
            shutil.copy(shot, tmp_path / "last-shot.png")
            Image.fromarray(expected.astype(np.uint8)).save(tmp_path / "expected.png")
            raise AssertionError(
                f"the preview at ({left}, {top}) {w}x{h} px differs from our pipeline: max "
                f"{last.get('max')} levels, {last.get('over')} values over {TOLERANCE}; "
                f"screenshot and expected image in {tmp_path}"
            ) from None


def test_image_widget_in_xterm_vt340(tmp_path: Path) -> None:
    """In xterm -ti vt340 the probe picks sixel and the widget shows every level within 1."""
    expected = pattern()
    png = tmp_path / "pattern.png"
    Image.fromarray(expected).save(png)
    report = tmp_path / "report.txt"
    command = f"cd {ROOT} && exec {sys.executable} -m tests.ui.xterm_show {png} {report}"
    with xterm(command, "60x20+0+0") as term:
        mode = wait_for(lambda: report.exists() and report.read_text(), 60, "the pattern on screen")
        assert mode.startswith("sixel"), mode
        shot = tmp_path / "shot.png"
        h, w = expected.shape

        def matches() -> bool:
            area = term.screenshot(shot)[:h, :w]
            return int(np.abs(area - expected[..., None].astype(int)).max()) <= TOLERANCE

        wait_for(matches, 20, "the screenshot to show the pattern", step=0.5)


def test_colour_widget_in_xterm_vt340(tmp_path: Path) -> None:
    """A colour picture of 300+ colours (grid palette, painted in layers) shows as decoded."""
    from tests.ui.test_sixel import decode_sixel, doppler_like
    from tui_pacs.ui.sixel import encode

    pixels = doppler_like(120, 84)
    png = tmp_path / "colour.png"
    Image.fromarray(pixels).save(png)
    # What the widget sends, decoded (rounding percentages; xterm truncates: within 1).
    expected = decode_sixel(encode(Image.fromarray(pixels)))
    report = tmp_path / "report.txt"
    command = f"cd {ROOT} && exec {sys.executable} -m tests.ui.xterm_show {png} {report}"
    with xterm(command, "60x20+0+0") as term:
        mode = wait_for(lambda: report.exists() and report.read_text(), 60, "the picture on screen")
        assert mode.startswith("sixel"), mode
        shot = tmp_path / "shot.png"
        h, w = pixels.shape[:2]

        def matches() -> bool:
            area = term.screenshot(shot)[:h, :w]
            return int(np.abs(area - expected).max()) <= TOLERANCE

        wait_for(matches, 20, "the screenshot to show the colour picture", step=0.5)
