"""Colour pixels: palette, YBR_FULL, YBR_FULL_422, planar configuration, deep RGB samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.imaging.synthetic import read, save
from tui_pacs.imaging import render_frame
from tui_pacs.imaging.decode import read_dataset

#: PS3.3 C.7.6.3.1.2: YBR_FULL from RGB (8 bits), as the standard writes it.
_FORWARD = np.array(
    [
        [0.2990, 0.5870, 0.1140],
        [-0.1687, -0.3313, 0.5000],
        [0.5000, -0.4187, -0.0813],
    ]
)
_OFFSET = np.array([0.0, 128.0, 128.0])


def ybr_to_rgb(ybr: np.ndarray) -> np.ndarray:
    """Invert the standard's forward equations (solved here, not taken from a library)."""
    rgb = np.linalg.solve(_FORWARD, (ybr.reshape(-1, 3).astype(np.float64) - _OFFSET).T).T
    return np.clip(np.rint(rgb), 0, 255).reshape(ybr.shape)


def test_palette_color_through_16_bit_tables() -> None:
    """examples_palette: each stored index looks up the Red/Green/Blue LUT Data, 16 -> 8 bits."""
    ds = read("examples_palette.dcm")
    stored = np.frombuffer(ds.PixelData, np.uint8).reshape(ds.Rows, ds.Columns)
    tables = [
        np.frombuffer(ds[f"{c}PaletteColorLookupTableData"].value, "<u2")
        for c in ("Red", "Green", "Blue")
    ]
    assert list(ds.RedPaletteColorLookupTableDescriptor) == [256, 0, 16]
    expected = np.stack([np.rint(t[stored] / 257.0) for t in tables], axis=-1).astype(np.uint8)
    out = render_frame(ds).pixels
    assert out.shape == (350, 800, 3)
    np.testing.assert_array_equal(out, expected)
    y, x = np.argwhere(stored == stored.max())[0]
    assert tuple(out[y, x]) == tuple(int(np.rint(t[stored[y, x]] / 257)) for t in tables)


def test_ybr_full_422_uncompressed() -> None:
    """YBR_FULL_422: Y0 Y1 Cb Cr per pixel pair, upsampled, then the standard's inverse matrix."""
    ds = read("SC_ybr_full_422_uncompressed.dcm")
    raw = np.frombuffer(ds.PixelData, np.uint8).reshape(ds.Rows, ds.Columns // 2, 4)
    ybr = np.empty((ds.Rows, ds.Columns, 3), np.uint8)
    ybr[:, 0::2, 0], ybr[:, 1::2, 0] = raw[..., 0], raw[..., 1]
    ybr[:, 0::2, 1] = ybr[:, 1::2, 1] = raw[..., 2]
    ybr[:, 0::2, 2] = ybr[:, 1::2, 2] = raw[..., 3]
    out = render_frame(ds).pixels.astype(int)
    assert np.abs(out - ybr_to_rgb(ybr)).max() <= 1


def test_ybr_full_uncompressed(tmp_path: Path) -> None:
    """YBR_FULL made here from a lossless RGB image converts back to it within +-1 per sample."""
    ds = read("SC_rgb_rle.dcm")
    rgb = ds.pixel_array
    ybr = np.clip(np.rint(rgb.reshape(-1, 3) @ _FORWARD.T + _OFFSET), 0, 255).astype(np.uint8)
    ybr = ybr.reshape(rgb.shape)
    ds.decompress()
    ds.PhotometricInterpretation = "YBR_FULL"
    ds.PixelData = ybr.tobytes()
    out = render_frame(read_dataset(save(ds, tmp_path / "ybr.dcm"))).pixels.astype(int)
    assert np.abs(out - ybr_to_rgb(ybr)).max() <= 1
    assert np.abs(out - rgb.astype(int)).max() <= 2
    assert tuple(rgb[0, 0]) == (255, 0, 0) and abs(out[0, 0] - [255, 0, 0]).max() <= 1


def test_planar_configuration_1() -> None:
    """ExplVR_BigEnd (RGB, Planar Configuration 1): the R, G, B planes follow each other."""
    ds = read("ExplVR_BigEnd.dcm")
    assert ds.PlanarConfiguration == 1
    planes = np.frombuffer(ds.PixelData, np.uint8).reshape(3, ds.Rows, ds.Columns)
    np.testing.assert_array_equal(render_frame(ds).pixels, np.moveaxis(planes, 0, -1))


def test_rgb_16_and_32_bit_samples_scale_to_8_bits() -> None:
    """RGB with 16- and 32-bit samples (v * 257, v * 16843009) renders as the 8-bit original."""
    eight = render_frame(read("SC_rgb_rle.dcm")).pixels
    for name in ("SC_rgb_rle_16bit.dcm", "SC_rgb_rle_32bit.dcm"):
        np.testing.assert_array_equal(render_frame(read(name)).pixels, eight)


def test_colour_invert_and_no_windows() -> None:
    """Colour images offer no window presets; the invert toggle inverts each sample."""
    ds = read("SC_rgb_rle.dcm")
    plain, inverted = render_frame(ds), render_frame(ds, invert=True)
    assert plain.voi is None and plain.presets == ()
    np.testing.assert_array_equal(inverted.pixels, 255 - plain.pixels)
