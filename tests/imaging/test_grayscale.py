"""Grayscale pixels against values computed here from the stored values and PS3.3's formulas."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from tests.imaging.synthetic import grayscale, linear, linear_exact, raw_le, read, sigmoid
from tui_pacs.imaging import render_frame
from tui_pacs.imaging.grayscale import auto_window, padding_range
from tui_pacs.imaging.presets import Window


def test_signed_mr_with_its_own_window_matches_the_linear_formula() -> None:
    """MR_small (signed 16-bit, WC 600 WW 1600): every pixel is LINEAR of its stored value."""
    ds = read("MR_small.dcm")
    stored = raw_le(ds, "i2").reshape(64, 64)
    out = render_frame(ds).pixels
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, linear(stored, 600, 1600))
    # Spot checks worked by hand: ((v - 599.5) / 1599 + 0.5) * 255, rounded.
    assert stored[0, 0] == 905 and out[0, 0] == 176
    assert stored[32, 32] == 182 and out[32, 32] == 61
    assert stored[10, 50] == 1104 and out[10, 50] == 208


def test_ct_rescale_then_brain_preset() -> None:
    """CT_small: HU = stored * 1 - 1024 (Modality LUT), then the CT brain window 40/80."""
    from tui_pacs.imaging.presets import CT_PRESETS

    ds = read("CT_small.dcm")
    stored = raw_le(ds, "i2").reshape(128, 128)
    brain = next(p for p in CT_PRESETS if p.name == "brain")
    out = render_frame(ds, window=brain).pixels
    np.testing.assert_array_equal(out, linear(stored - 1024.0, 40, 80))
    assert stored[64, 64] == 1928 and out[64, 64] == 255  # 904 HU: above the window
    assert stored[0, 0] == 175 and out[0, 0] == 0  # -849 HU: below
    assert stored[100, 30] == 1089 and out[100, 30] == 210  # 65 HU: ((65-39.5)/79+0.5)*255


def test_free_window_in_modality_units() -> None:
    """A free window is in HU, applied after the rescale, not in stored values."""
    ds = read("CT_small.dcm")
    stored = raw_le(ds, "i2").reshape(128, 128)
    out = render_frame(ds, window=Window(-600, 1500)).pixels
    np.testing.assert_array_equal(out, linear(stored - 1024.0, -600, 1500))


def test_bits_stored_below_bits_allocated_with_its_second_window() -> None:
    """examples_overlay (12 of 16 bits) with its second file window (WC 200, WW 443)."""
    ds = read("examples_overlay.dcm")
    stored = raw_le(ds, "u2").reshape(300, 484)
    frame = render_frame(ds, overlays=False)
    second = next(p for p in frame.presets if p.name == "file2")
    out = render_frame(ds, window=second, overlays=False).pixels
    np.testing.assert_array_equal(out, linear(stored, 200, 443))
    np.testing.assert_array_equal(frame.pixels, linear(stored, 450, 790))


def test_garbage_above_bits_stored_is_ignored_unsigned_and_signed() -> None:
    """Bits above High Bit (e.g. retired overlay bits) never reach the display, signed or not."""
    values = np.arange(-2048, 2048, dtype=np.int16).reshape(64, 64)
    words = ((values.astype(np.int32) & 0x0FFF) | 0xA000).astype(np.uint16).view(np.int16)
    ds = grayscale(words, bits_stored=12, WindowCenter=0, WindowWidth=4096)
    np.testing.assert_array_equal(render_frame(ds).pixels, linear(values, 0, 4096))
    unsigned = np.arange(4096, dtype=np.uint16).reshape(64, 64)
    ds = grayscale(unsigned | 0xF000, bits_stored=12, WindowCenter=2048, WindowWidth=4096)
    np.testing.assert_array_equal(render_frame(ds).pixels, linear(unsigned, 2048, 4096))


def test_16_bit_window_lands_exactly_on_0_and_255() -> None:
    """A full-range 16-bit ramp windowed over its whole range uses exactly 0..255, every level."""
    ramp = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    out = render_frame(grayscale(ramp, WindowCenter=32768, WindowWidth=65536)).pixels
    assert out.min() == 0 and out.max() == 255
    assert out[0, 0] == 0 and out[-1, -1] == 255
    assert set(np.unique(out).tolist()) == set(range(256))
    assert np.all(np.diff(out.ravel().astype(int)) >= 0)
    signed = (np.arange(65536, dtype=np.int32) - 32768).astype(np.int16).reshape(256, 256)
    out = render_frame(grayscale(signed, WindowCenter=0, WindowWidth=65536)).pixels
    assert out[0, 0] == 0 and out[-1, -1] == 255
    np.testing.assert_array_equal(out, linear(signed, 0, 65536))


def _ct(photometric: str, **extra: object) -> Dataset:
    ds = read("CT_small.dcm")
    ds.PhotometricInterpretation = photometric
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    return ds


def test_monochrome1_is_inverted_exactly_once() -> None:
    """MONOCHROME1 inverts once; an INVERSE shape on it is the same inversion, not a second."""
    stored = raw_le(read("CT_small.dcm"), "i2").reshape(128, 128)
    positive = linear(stored - 1024.0, 40, 400)
    w = Window(40, 400)
    mono2 = render_frame(_ct("MONOCHROME2"), window=w)
    mono1 = render_frame(_ct("MONOCHROME1"), window=w)
    np.testing.assert_array_equal(mono2.pixels, positive)
    np.testing.assert_array_equal(mono1.pixels, 255 - positive)
    assert mono1.inverted and not mono2.inverted
    for shape in ("INVERSE", "IDENTITY"):
        ds = _ct("MONOCHROME1", PresentationLUTShape=shape)
        np.testing.assert_array_equal(render_frame(ds, window=w).pixels, 255 - positive)
    # The viewer's invert toggle on MONOCHROME1 gives back the positive image.
    back = render_frame(_ct("MONOCHROME1"), window=w, invert=True)
    np.testing.assert_array_equal(back.pixels, positive)
    assert not back.inverted


def test_presentation_lut_shape_inverse_on_monochrome2() -> None:
    """Presentation LUT Shape INVERSE (C.11.6.1) on MONOCHROME2 data inverts the display."""
    ramp = np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16)
    ds = grayscale(
        ramp, bits_stored=12, WindowCenter=2048, WindowWidth=4096, PresentationLUTShape="INVERSE"
    )
    np.testing.assert_array_equal(render_frame(ds).pixels, 255 - linear(ramp, 2048, 4096))


def test_sigmoid_voi_lut_function() -> None:
    """VOI LUT Function SIGMOID (C.11.2.1.3.1): 255 / (1 + exp(-4 (x - c) / w))."""
    ramp = (np.arange(4096, dtype=np.int32) - 2048).astype(np.int16).reshape(64, 64)
    ds = grayscale(ramp, WindowCenter=100, WindowWidth=600, VOILUTFunction="SIGMOID")
    out = render_frame(ds).pixels
    np.testing.assert_array_equal(out, sigmoid(ramp, 100, 600))
    i = np.argwhere(ramp == 100)[0]
    assert out[tuple(i)] == 128  # the centre maps to 255 / 2 = 127.5 -> 128
    assert out[0, 0] == 0 and out[-1, -1] == 255


def test_linear_exact_voi_lut_function() -> None:
    """VOI LUT Function LINEAR_EXACT (C.11.2.1.3.2): ((x - c) / w + 0.5) * 255, no half-shifts."""
    ramp = np.arange(256, dtype=np.uint16).reshape(16, 16)
    ds = grayscale(ramp, WindowCenter=100, WindowWidth=51, VOILUTFunction="LINEAR_EXACT")
    out = render_frame(ds).pixels
    np.testing.assert_array_equal(out, linear_exact(ramp, 100, 51))
    # 125 -> 252.5 rounds to 252; 126 lies above c + w/2 = 125.5; 74 at or below c - w/2 = 74.5.
    assert out.ravel()[100] == 128 and out.ravel()[125] == 252 and out.ravel()[126] == 255
    assert out.ravel()[74] == 0
    assert not np.array_equal(out, linear(ramp, 100, 51))


def test_voi_lut_sequence_table() -> None:
    """A VOI LUT Sequence table (C.11.2.1.1): first value mapped, clamped, scaled from 12 bits."""
    ramp = np.arange(0, 1024, 4, dtype=np.uint16).reshape(16, 16)
    table = (np.sqrt(np.arange(200) / 199.0) * 4095).astype(np.uint16)
    item = Dataset()
    item.LUTDescriptor = [200, 100, 12]
    item.LUTData = table.tolist()
    item["LUTData"].VR = "US"
    item.LUTExplanation = "SQRT"
    ds = grayscale(ramp, VOILUTSequence=[item], WindowCenter=512, WindowWidth=1024)
    out = render_frame(ds)
    idx = np.clip(ramp.astype(int) - 100, 0, 199)
    expected = np.clip(np.rint(table[idx] * 255.0 / 4095), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out.pixels, expected)  # the table wins over the window
    assert out.voi is not None and out.voi.label == "SQRT"


def test_modality_lut_sequence_then_window() -> None:
    """A Modality LUT Sequence (C.11.1.1) maps stored values before the window."""
    stored = np.arange(256, dtype=np.uint16).reshape(16, 16)
    lut = (np.arange(256) * 10 + 5).astype(np.uint16)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 16]
    item.LUTData = lut.tolist()
    item["LUTData"].VR = "US"
    ds = grayscale(stored, ModalityLUTSequence=[item], WindowCenter=1000, WindowWidth=800)
    np.testing.assert_array_equal(render_frame(ds).pixels, linear(lut[stored], 1000, 800))


def test_auto_window_ignores_pixel_padding_value_and_range() -> None:
    """The histogram window skips Pixel Padding Value, and the whole Pixel Padding Range Limit."""
    body = np.arange(1000, dtype=np.int16)
    pixels = np.concatenate([np.full(3000, -2000, np.int16), np.full(96, -1500, np.int16), body])
    pixels = pixels.reshape(64, 64)
    with_pad = grayscale(pixels, PixelPaddingValue=-2000, PixelPaddingRangeLimit=-1000)
    out = render_frame(with_pad)
    low, high = (np.percentile(body, q, method="inverted_cdf") for q in (0.5, 99.5))
    assert out.voi is not None and out.voi.window == auto_window(body)
    assert out.voi.window.window_width == high - low + 1
    # The padding range is cut: the body spans the display, the lowest body value is black.
    assert out.pixels.reshape(-1)[-1000 + int(low)] == 0
    assert out.pixels.reshape(-1)[-1000 + int(high)] == 255
    # Only the padding value: -1500 now counts, so the window starts lower.
    only_value = render_frame(grayscale(pixels, PixelPaddingValue=-2000))
    assert only_value.voi is not None and only_value.voi.window is not None
    assert only_value.voi.window.window_center < out.voi.window.window_center
    assert padding_range(with_pad) == (-2000, -1000)


def test_padding_value_read_as_unsigned_on_signed_data() -> None:
    """Pixel Padding Value encoded US on signed data (0xF830) is taken as -2000."""
    ds = grayscale(np.zeros((2, 2), np.int16), PixelPaddingValue=0xF830)
    assert padding_range(ds) == (-2000, -2000)


def test_float_free_path_matches_table_path() -> None:
    """Wide 32-bit data (no lookup table) gives the same values as the formula."""
    values = (np.arange(64 * 64, dtype=np.int64) * 100_000 - 50_000_000).astype(np.int32)
    ds = grayscale(values.reshape(64, 64), WindowCenter=0, WindowWidth=200_000_000)
    np.testing.assert_array_equal(render_frame(ds).pixels, linear(values.reshape(64, 64), 0, 2e8))
