"""The sixel the image widget emits, decoded back to pixels: grey within 1, colour within bounds.

Grey images must not change by a byte (a hash of today's stream per image); colour images are
measured on pydicom's colour ultrasound (JPEG, frame 16 of 30, fitted to 512x384 as in the
preview benchmark) and on a synthetic picture of known colours.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from PIL import Image
from textual.app import App, ComposeResult
from textual.geometry import Region

from tui_pacs.ui import sixel
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


def arithmetic(width: int, height: int) -> np.ndarray:
    """A deterministic 8-bit picture with every level and fine detail (no random generator)."""
    y, x = np.mgrid[0:height, 0:width]
    return ((x * 7 + y * 13 + (x * y) % 17) % 256).astype(np.uint8)


#: SHA-256 of the grey streams before the colour work (commit fe6190e): grey must not move.
GREY_STREAMS = {
    (512, 384): "f9bdb4ccc97ba4150047e48b720706b62859ec4f6cdc24b6ddfe78facadfb39b",
    (97, 41): "5a79447ee5a85f00f03d93044bf356ba1317d6c105c7a6646d7d54477793b53b",
    (6, 7): "fb0919af81cf2533bfec5131e2fd651dfa1bec1e23e225528c574e5baf7c3250",
}


@pytest.mark.parametrize("size", list(GREY_STREAMS))
def test_grey_stream_unchanged(size: tuple[int, int]) -> None:
    """Grey images (L, and RGB with equal channels) give the same bytes as before, fast or not."""
    pixels = arithmetic(*size)
    for image in (Image.fromarray(pixels), Image.fromarray(np.stack([pixels] * 3, -1), "RGB")):
        for fast in (False, True):
            stream = encode(image, fast=fast).encode("ascii")
            assert hashlib.sha256(stream).hexdigest() == GREY_STREAMS[size]


def colour_error(pixels: np.ndarray, stream: str) -> tuple[float, float, int]:
    """Mean, 99th percentile and largest absolute per-channel error of the decoded stream."""
    decoded = decode_sixel(stream)
    assert decoded.shape == pixels.shape and (decoded >= 0).all(), "a pixel left unpainted"
    error = np.abs(decoded - pixels.astype(int))
    return float(error.mean()), float(np.percentile(error, 99)), int(error.max())


@pytest.fixture(scope="module")
def ultrasound() -> np.ndarray:
    """Frame 16 of pydicom's 30-frame JPEG colour ultrasound as the preview shows it (512x384)."""
    from pydicom.data import get_testdata_file

    from tui_pacs.services.render import Renderer

    path = get_testdata_file("examples_ybr_color.dcm")
    assert path is not None
    image = Renderer().render(path, 15, size=(512, 512)).image
    assert image.size == (512, 384) and image.mode == "RGB"
    return np.asarray(image)


def test_ultrasound_still(ultrasound: np.ndarray) -> None:
    """The preview frame: under 64 KiB (190 KiB with the median cut), error close to sixel's own.

    The median cut gave a mean error of 0.56 levels, 99th percentile 3, but 66 at worst; the
    2 % grid 0.90, 4 and 6 (60.1 KiB; figures in bench/README.md). The bounds leave a little
    room for another JPEG decoder or resampling.
    """
    stream = encode(Image.fromarray(ultrasound))
    mean, p99, worst = colour_error(ultrasound, stream)
    assert len(stream) <= 64 * 1024, len(stream)
    assert mean <= 1.0 and p99 <= 5 and worst <= 10, (mean, p99, worst)


def test_ultrasound_cine(ultrasound: np.ndarray) -> None:
    """During cine: under textual-image's 26 KiB (24.9), errors within its octree's 2.1/14/15."""
    stream = encode(Image.fromarray(ultrasound), fast=True)
    mean, p99, worst = colour_error(ultrasound, stream)
    assert len(stream) <= 27 * 1024, len(stream)
    assert mean <= 2.0 and p99 <= 10 and worst <= 15, (mean, p99, worst)


def doppler_like(width: int = 240, height: int = 180) -> np.ndarray:
    """Grey speckle (every level) with a red/blue flow region of 6 known colours, 300+ colours."""
    y, x = np.mgrid[0:height, 0:width]
    grey = ((x * 5 + y * 3 + (x * y) % 23) % 256).astype(np.uint8)
    pixels = np.stack([grey] * 3, axis=-1)
    flow = ((x - width // 2) ** 2 + (y - height // 2) ** 2) < (min(width, height) // 3) ** 2
    colours = np.array(
        [[200, 0, 0], [255, 80, 40], [140, 10, 10], [0, 0, 200], [40, 120, 255], [10, 10, 120]],
        dtype=np.uint8,
    )
    pixels[flow] = colours[(x[flow] // 8 + y[flow] // 8) % len(colours)]
    return pixels


@pytest.mark.parametrize(("fast", "step"), [(False, sixel.COLOUR_STEP), (True, sixel.FAST_STEP)])
def test_known_colours_within_half_a_step(fast: bool, step: int) -> None:
    """Grey and coloured pixels come back within half a grid step (in 8 bits), painted once."""
    pixels = doppler_like()
    assert Image.fromarray(pixels).getcolors(sixel.MAX_COLORS) is None  # the grid path
    decoded = decode_sixel(encode(Image.fromarray(pixels), fast=fast))
    bound = step / 2 * 255 / 100 + 1.5  # half a step, plus the percent's own rounding
    assert np.abs(decoded - pixels.astype(int)).max() <= bound
    flow = pixels[..., 0] != pixels[..., 2]
    assert (decoded[flow][:, 0] != decoded[flow][:, 2]).all()  # the flow stays coloured


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (97, 13), (64, 60)])
def test_layers_paint_the_same_picture(size: tuple[int, int]) -> None:
    """Layered painting decodes to exactly the picture of one pass per colour, any height."""
    rng = np.random.default_rng(7)
    palette = rng.integers(0, 101, (40, 3), dtype=np.uint8)
    width, height = size
    blocky = rng.integers(0, 40, (height // 3 + 1, width // 2 + 1))
    for indices in (rng.integers(0, 40, (height, width)), blocky.repeat(3, 0).repeat(2, 1)):
        indices = indices[:height, :width]
        layered = sixel.encode_layered(indices, palette).decode("ascii")
        plain = sixel.encode_indexed(indices, palette).decode("ascii")
        assert np.array_equal(decode_sixel(layered), decode_sixel(plain))


def test_few_registers() -> None:
    """With 16 colour registers (a VT340) a rich colour image still fits, by median cut."""
    stream = encode(Image.fromarray(doppler_like(60, 40)), colors=16)
    assert len(set(re.findall(r"#(\d+);2;", stream))) <= 16
    assert (decode_sixel(stream) >= 0).all()


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
