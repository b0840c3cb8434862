"""Overlay planes (60xx) burnt into the rendered frame at their origin and frame."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import pack_bits

from tests.imaging.synthetic import grayscale, read
from tui_pacs.imaging import render_frame


def _add_overlay(
    ds: Dataset, group: int, bits: np.ndarray, origin: tuple[int, int], **frames: int
) -> None:
    rows, columns = bits.shape[-2:]
    ds.add_new((group, 0x0010), "US", rows)
    ds.add_new((group, 0x0011), "US", columns)
    ds.add_new((group, 0x0040), "CS", "G")
    ds.add_new((group, 0x0050), "SS", list(origin))
    ds.add_new((group, 0x0100), "US", 1)
    ds.add_new((group, 0x0102), "US", 0)
    if "count" in frames:
        ds.add_new((group, 0x0015), "IS", frames["count"])
        ds.add_new((group, 0x0051), "US", frames["first"])
    ds.add_new((group, 0x3000), "OW", pack_bits(bits.ravel()))


def test_bundled_overlay_is_drawn_where_its_bits_are_set() -> None:
    """examples_overlay: the 222 set bits of (6000,3000) at origin 1\\1 turn white, nothing else."""
    ds = read("examples_overlay.dcm")
    bits = np.unpackbits(np.frombuffer(ds[0x60003000].value, np.uint8), bitorder="little")
    mask = bits[: 300 * 484].reshape(300, 484).astype(bool)
    assert mask.sum() == 222
    plain = render_frame(ds, overlays=False).pixels
    drawn = render_frame(ds).pixels
    np.testing.assert_array_equal(drawn[mask], 255)
    np.testing.assert_array_equal(drawn[~mask], plain[~mask])
    assert (plain[mask] != 255).any()


def test_overlay_origin_offsets_and_clips() -> None:
    """Origin (row 3, column 5) shifts the plane; an origin at (0, 0) clips its first row/column."""
    ds = grayscale(np.zeros((16, 16), np.uint16), WindowCenter=2048, WindowWidth=4096)
    _add_overlay(ds, 0x6000, np.ones((4, 4), np.uint8), (3, 5))
    _add_overlay(ds, 0x6002, np.eye(4, dtype=np.uint8), (0, 0))
    out = render_frame(ds).pixels
    expected = np.zeros((16, 16), bool)
    expected[2:6, 4:8] = True
    expected[0, 0] = expected[1, 1] = expected[2, 2] = True  # eye(4) shifted up-left by one
    np.testing.assert_array_equal(out == 255, expected)


def test_multiframe_overlay_follows_image_frame_origin() -> None:
    """A 2-frame overlay starting on image frame 2 covers frames 2 and 3, not frame 1."""
    ds = grayscale(np.zeros((3, 8, 8), np.uint8), WindowCenter=128, WindowWidth=256)
    planes = np.zeros((2, 8, 8), np.uint8)
    planes[0, 0, 0] = planes[1, 7, 7] = 1
    _add_overlay(ds, 0x6000, planes, (1, 1), count=2, first=2)
    assert render_frame(ds, 0).pixels.max() == 0
    assert np.argwhere(render_frame(ds, 1).pixels == 255).tolist() == [[0, 0]]
    assert np.argwhere(render_frame(ds, 2).pixels == 255).tolist() == [[7, 7]]


def test_broken_overlay_does_not_hide_the_image() -> None:
    """Overlay Data shorter than its rows x columns is skipped, the image still renders."""
    ds = grayscale(np.full((8, 8), 100, np.uint8), WindowCenter=128, WindowWidth=256)
    _add_overlay(ds, 0x6000, np.ones((2, 2), np.uint8), (1, 1))
    ds[0x60000010].value = 64
    assert (render_frame(ds).pixels != 255).all()
