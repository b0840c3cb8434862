"""The sixel the image widget emits, decoded back to pixels, is the image within +-1 per pixel."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from textual.app import App, ComposeResult
from textual.geometry import Region

from tui_pacs.ui.graphics import GraphicsMode
from tui_pacs.ui.sixel import encode
from tui_pacs.ui.widgets.image_view import ImageView

_DCS = re.compile(r"\x1bP[0-9;]*q(.*?)\x1b\\", re.DOTALL)


def decode_sixel(stream: str) -> np.ndarray:
    """A small sixel decoder: the (height, width, 3) RGB image a VT340-like terminal paints.

    Understands raster attributes, colour definitions (RGB percent and HLS-free), colour
    selection, repeats (``!n``), graphics carriage return (``$``) and new line (``-``).
    Unpainted pixels are -1.
    """
    body = _DCS.search(stream)
    assert body is not None, "no sixel DCS in the stream"
    data = body.group(1)
    raster = re.match(r'"(\d+);(\d+);(\d+);(\d+)', data)
    assert raster, "raster attributes missing"
    width, height = int(raster.group(3)), int(raster.group(4))
    out = np.full((height, width, 3), -1, dtype=np.int32)
    palette: dict[int, tuple[int, int, int]] = {}
    pos, x, band, color = raster.end(), 0, 0, 0
    tokens = re.compile(r"#(\d+)(?:;2;(\d+);(\d+);(\d+))?|!(\d+)([?-~])|([?-~])|(\$)|(-)")
    while pos < len(data):
        m = tokens.match(data, pos)
        assert m, f"unexpected sixel byte {data[pos]!r} at {pos}"
        pos = m.end()
        if m.group(1) is not None:
            color = int(m.group(1))
            if m.group(2) is not None:
                palette[color] = tuple(round(int(m.group(k)) * 255 / 100) for k in (2, 3, 4))
            continue
        if m.group(8):
            x = 0
            continue
        if m.group(9):
            x, band = 0, band + 1
            continue
        count, char = (int(m.group(5)), m.group(6)) if m.group(5) else (1, m.group(7))
        bits = ord(char) - 0x3F
        for row in range(6):
            y = band * 6 + row
            if bits >> row & 1 and y < height:
                assert x + count <= width, "sixel paints past the raster width"
                out[y, x : x + count] = palette[color]
        x += count
    return out


def ct_like(width: int = 512, height: int = 512, seed: int = 3) -> np.ndarray:
    """An 8-bit phantom: black outside an ellipse, every grey level inside, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    inside = ((x - width / 2) / (width * 0.45)) ** 2 + ((y - height / 2) / (height * 0.4)) ** 2 < 1
    values = (x * 255 // max(1, width - 1) + rng.integers(-20, 20, (height, width))).clip(0, 255)
    return np.where(inside, values, 0).astype(np.uint8)


@pytest.mark.parametrize("size", [(512, 512), (97, 41), (1, 1), (6, 7)])
def test_grayscale_round_trip(size: tuple[int, int]) -> None:
    """Every grey level comes back within 1 (sixel's percent precision), every pixel painted."""
    pixels = ct_like(*size)
    decoded = decode_sixel(encode(Image.fromarray(pixels)))
    assert decoded.shape[:2] == pixels.shape
    assert (decoded >= 0).all()
    assert np.abs(decoded[..., 0] - pixels.astype(int)).max() <= 1
    assert (decoded[..., 0] == decoded[..., 1]).all() and (decoded[..., 1] == decoded[..., 2]).all()


def test_colour_round_trip() -> None:
    """A colour image of up to 256 colours comes back within 1 per channel (median cut is exact)."""
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 256, (200, 3), dtype=np.uint8)
    picks = rng.integers(0, 200, (60, 80))
    pixels = colours[picks]
    decoded = decode_sixel(encode(Image.fromarray(pixels, "RGB")))
    assert np.abs(decoded - pixels.astype(int)).max() <= 1


class _One(App[None]):
    def __init__(self, image: Image.Image) -> None:
        super().__init__()
        self.image = image

    def compose(self) -> ComposeResult:
        yield ImageView(mode=GraphicsMode.SIXEL, id="view")

    def on_mount(self) -> None:
        self.query_one(ImageView).show(self.image)


@pytest.mark.asyncio
async def test_widget_emits_the_image_as_sixel() -> None:
    """The sixel widget writes a DCS decoding to the image it was given, unscaled."""
    pixels = ct_like(200, 160)
    app = _One(Image.fromarray(pixels))
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        view = app.query_one(ImageView)
        inner = next(w for w in view.walk_children() if type(w).__name__ == "_FastSixelImpl")
        lines = inner.render_lines(Region(0, 0, inner.size.width, inner.size.height))
        stream = "".join(seg.text for line in lines for seg in line)
    decoded = decode_sixel(stream)
    assert decoded.shape[:2] == pixels.shape
    assert np.abs(decoded[..., 0] - pixels.astype(int)).max() <= 1
