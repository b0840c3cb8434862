"""Kitty graphics: the escape stream the image widget writes, decoded back to pixels.

textual-image writes the kitty graphics protocol straight to the process's stdout: the image as
PNG in base64 chunks (``a=T`` implied, ``f=100``, ``m=1`` until the last chunk), then a virtual
placement (``a=p,U=1,c=COLUMNS,r=ROWS``) that the unicode placeholder cells of the widget show.
The tests capture that stream, rebuild every image from its chunks and compare its pixels.
"""

from __future__ import annotations

import base64
import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image
from textual.app import App, ComposeResult

from tui_pacs.imaging.geometry import fit_image
from tui_pacs.imaging.pipeline import render_frame
from tui_pacs.services.render import Renderer
from tui_pacs.ui import graphics
from tui_pacs.ui.graphics import Graphics, GraphicsMode
from tui_pacs.ui.widgets.image_view import ImageView
from tui_pacs.ui.widgets.preview import PreviewPane
from tui_pacs.ui.widgets.series_table import SeriesTable

pytestmark = pytest.mark.asyncio

_APC = re.compile(r"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\")
#: Unicode placeholder: the cell character kitty replaces with a piece of the image.
PLACEHOLDER = "\U0010eeee"
CELL = (10, 20)


@dataclass
class KittyImage:
    """One image transmitted with the kitty graphics protocol, and its placement."""

    image_id: int
    png: bytes = b""
    keys: list[dict[str, str]] = field(default_factory=list)
    placement: dict[str, str] | None = None

    def pixels(self) -> np.ndarray:
        """The transmitted PNG decoded (what kitty would show)."""
        return np.asarray(Image.open(io.BytesIO(self.png)))


def decode_stream(stream: str) -> list[KittyImage]:
    """Every image of a kitty graphics stream, chunks joined, in transmission order."""
    images: dict[int, KittyImage] = {}
    receiving: KittyImage | None = None
    for match in _APC.finditer(stream):
        keys = dict(item.split("=", 1) for item in match.group(1).split(",") if item)
        action = keys.get("a", "t")  # no action key: transmit
        if action == "p":
            images[int(keys["i"])].placement = keys
        elif action in ("t", "T"):
            if receiving is None:
                receiving = images.setdefault(int(keys["i"]), KittyImage(int(keys["i"])))
            assert int(keys["i"]) == receiving.image_id, "chunks of two images interleaved"
            receiving.keys.append(keys)
            receiving.png += base64.b64decode(match.group(2) or "")
            if keys.get("m", "0") == "0":
                receiving = None
    assert receiving is None, "a transmission was left unfinished"
    return list(images.values())


@pytest.fixture
def kitty(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Kitty graphics with 10x20 cells; what is written to the real stdout is captured."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "__stdout__", stream)
    before = graphics.current()
    graphics.set_current(Graphics(GraphicsMode.KITTY, *CELL, "test"))
    yield stream
    graphics.set_current(before)


class OneImage(App[None]):
    """An image widget of 40x15 cells."""

    CSS = "ImageView { width: 40; height: 15; }"

    def compose(self) -> ComposeResult:
        yield ImageView(id="view")


def ramp(width: int, height: int) -> Image.Image:
    """A grey picture using many levels, different in every row and column."""
    y, x = np.mgrid[0:height, 0:width]
    return Image.fromarray(((x * 7 + y * 13) % 256).astype(np.uint8))


async def test_widget_sends_our_pixels_unscaled(kitty: io.StringIO) -> None:
    """A 123x57 picture goes out as one PNG of the same pixels, padded black to 13x3 cells."""
    picture = ramp(123, 57)
    app = OneImage()
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(ImageView)
        assert view.pixel_box() == (400, 300)
        view.show(picture)
        await pilot.pause()
        await pilot.pause()
        widget = view.query_one(".image")
        assert (widget.size.width, widget.size.height) == (13, 3)
        line = "".join(segment.text for segment in widget.render_line(0))
    (sent,) = decode_stream(kitty.getvalue())
    assert all(k.get("f") == "100" for k in sent.keys)  # PNG
    assert len(sent.keys) == 1 or all(k["m"] == "1" for k in sent.keys[:-1])
    pixels = sent.pixels()
    assert pixels.shape == (60, 130)  # 3 x 20 rows, 13 x 10 columns
    assert np.array_equal(pixels[:57, :123], np.asarray(picture))
    assert not pixels[57:].any() and not pixels[:, 123:].any()
    assert sent.placement is not None
    assert sent.placement["U"] == "1"
    assert (sent.placement["c"], sent.placement["r"]) == ("13", "3")
    # The widget's cells are placeholders naming the image by their foreground colour.
    assert line.count(PLACEHOLDER) == 13


async def test_large_image_in_chunks(kitty: io.StringIO) -> None:
    """A picture filling the widget (400x300 colour noise) is sent in 4096-byte chunks, exactly."""
    rng = np.random.default_rng(5)
    picture = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), "RGB")
    app = OneImage()
    async with app.run_test(size=(60, 20)) as pilot:
        app.query_one(ImageView).show(picture)
        await pilot.pause()
        await pilot.pause()
    (sent,) = decode_stream(kitty.getvalue())
    assert len(sent.keys) > 10  # hundreds of KiB of PNG
    assert np.array_equal(sent.pixels(), np.asarray(picture))  # whole cells: no padding
    assert (sent.placement["c"], sent.placement["r"]) == ("40", "15")


class WideImage(App[None]):
    """An image widget wider than kitty's placeholders can address (320 columns)."""

    CSS = "ImageView { width: 320; height: 10; }"

    def compose(self) -> ComposeResult:
        yield ImageView(id="view")


async def test_wide_widget_stays_within_placeholder_range(kitty: io.StringIO) -> None:
    """A 320-column widget renders at most 297 columns of placeholders (textual-image raises)."""
    app = WideImage()
    async with app.run_test(size=(330, 12)) as pilot:
        view = app.query_one(ImageView)
        box = view.pixel_box()
        assert box == (297 * CELL[0], 10 * CELL[1])
        view.show(Image.new("L", (box[0], 40), 200))  # a wide strip filling the box's width
        await pilot.pause()
        await pilot.pause()
        assert view.query_one(".image").size.width == 297
    (sent,) = decode_stream(kitty.getvalue())
    assert sent.placement is not None and sent.placement["c"] == "297"
    assert sent.pixels().shape == (40, 2970)


async def test_console_preview_on_kitty(kitty: io.StringIO, demo_config, console_factory) -> None:
    """The archive preview of a CT, sent over kitty, decodes to our pipeline's image exactly."""
    async with console_factory(demo_config) as console:
        screen = console.app.screen
        screen.query_one(SeriesTable).focus()
        await console.pilot.press("down")  # SMITH's MR, series 2
        await console.settle()
        pane = screen.query_one(PreviewPane)
        view = pane.query_one("#preview-image", ImageView)
        assert view.image is not None and not pane.error
        box = view.pixel_box()
        renderer = Renderer(demo_config)
        images = renderer.series_images(screen.series_uid)
        middle = renderer.resolve(images[len(images) // 2])
        from pydicom import dcmread

        rendered = render_frame(dcmread(middle))
        expected = np.asarray(fit_image(rendered.to_pil(), box, aspect=rendered.pixel_aspect))
        assert np.array_equal(np.asarray(view.image), expected)
    sent = decode_stream(kitty.getvalue())
    h, w = expected.shape
    padded = (-(-h // CELL[1]) * CELL[1], -(-w // CELL[0]) * CELL[0])
    previews = [s for s in sent if s.pixels().shape == padded]
    assert previews, [s.pixels().shape for s in sent]
    pixels = previews[-1].pixels()
    assert np.array_equal(pixels[:h, :w], expected)
    assert not pixels[h:].any() and not pixels[:, w:].any()
