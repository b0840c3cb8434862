"""Multi-frame and enhanced multi-frame images: the right frame, with its own attributes."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from tests.imaging.synthetic import grayscale, linear, linear_exact, read
from tui_pacs.imaging import render_frame
from tui_pacs.imaging.frames import frame_view, number_of_frames
from tui_pacs.imaging.geometry import orientation_labels, pixel_aspect_ratio


def test_frames_of_a_classic_multiframe_grayscale() -> None:
    """Each of four frames renders from its own stored values under the shared window."""
    frames = np.stack([np.full((8, 8), k * 1000, np.uint16) for k in range(4)])
    frames[:, 0, 0] = 4095
    ds = grayscale(frames, bits_stored=12, WindowCenter=1500, WindowWidth=2000)
    assert number_of_frames(ds) == 4
    for k in range(4):
        out = render_frame(ds, k)
        assert (out.index, out.number_of_frames) == (k, 4)
        np.testing.assert_array_equal(out.pixels, linear(frames[k], 1500, 2000))


def test_second_frame_of_an_rle_rgb_pair() -> None:
    """SC_rgb_rle_2frame: frame 2 is the inverse of frame 1 (= SC_rgb_rle)."""
    first = render_frame(read("SC_rgb_rle.dcm")).pixels
    pair = read("SC_rgb_rle_2frame.dcm")
    np.testing.assert_array_equal(render_frame(pair, 0).pixels, first)
    np.testing.assert_array_equal(render_frame(pair, 1).pixels, 255 - first)


def test_frame_of_a_32_bit_multiframe_dose_with_auto_window() -> None:
    """rtdose (15 frames, 32-bit): frame 8 with a histogram window computed here independently."""
    ds = read("rtdose.dcm")
    stored = np.frombuffer(ds.PixelData, "<u4").reshape(15, ds.Rows, ds.Columns)[7]
    low, high = (int(np.percentile(stored, q, method="inverted_cdf")) for q in (0.5, 99.5))
    center, width = (low + high + 1) / 2, high - low + 1
    out = render_frame(ds, 7)
    np.testing.assert_array_equal(out.pixels, linear(stored, center, width))
    assert not np.array_equal(out.pixels, render_frame(ds, 0).pixels)


def test_frame_of_a_jpeg_ultrasound_cine() -> None:
    """examples_ybr_color (30 JPEG frames): frame 16 decodes alone and differs from frame 1."""
    ds = read("examples_ybr_color.dcm")
    frame = render_frame(ds, 15)
    assert frame.pixels.shape == (240, 320, 3) and frame.number_of_frames == 30
    assert frame.lossy
    assert np.abs(frame.pixels.astype(int) - render_frame(ds, 0).pixels).mean() > 1


def _item(**attributes: object) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def enhanced() -> tuple[Dataset, np.ndarray]:
    """Three frames; shared rescale, window and spacing, with per-frame overrides."""
    stored = np.stack([np.arange(256, dtype=np.uint16).reshape(16, 16) + 100 * k for k in range(3)])
    ds = grayscale(stored, bits_stored=12, modality="MR")
    # Top-level values an enhanced IOD must not use: they have to lose to the functional groups.
    ds.WindowCenter, ds.WindowWidth = 9999, 1
    shared = Dataset()
    shared.PixelMeasuresSequence = [_item(PixelSpacing=[0.5, 1.0], SliceThickness=2)]
    shared.PixelValueTransformationSequence = [
        _item(RescaleSlope=2, RescaleIntercept=-100, RescaleType="US")
    ]
    shared.FrameVOILUTSequence = [_item(WindowCenter=100, WindowWidth=200)]
    shared.PlaneOrientationSequence = [_item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])]
    ds.SharedFunctionalGroupsSequence = [shared]
    per = [Dataset(), Dataset(), Dataset()]
    per[1].PixelValueTransformationSequence = [
        _item(RescaleSlope=1, RescaleIntercept=0, RescaleType="US")
    ]
    per[2].FrameVOILUTSequence = [
        _item(WindowCenter=500, WindowWidth=100, VOILUTFunction="LINEAR_EXACT")
    ]
    per[2].PlaneOrientationSequence = [_item(ImageOrientationPatient=[0, 1, 0, 0, 0, -1])]
    ds.PerFrameFunctionalGroupsSequence = per
    return ds, stored


def test_enhanced_multiframe_takes_rescale_and_window_per_frame() -> None:
    """Per-frame functional groups override the shared ones; top-level values are ignored."""
    ds, stored = enhanced()
    np.testing.assert_array_equal(
        render_frame(ds, 0).pixels, linear(stored[0] * 2.0 - 100, 100, 200)
    )
    np.testing.assert_array_equal(render_frame(ds, 1).pixels, linear(stored[1], 100, 200))
    np.testing.assert_array_equal(
        render_frame(ds, 2).pixels, linear_exact(stored[2] * 2.0 - 100, 500, 100)
    )
    frame = render_frame(ds, 2)
    assert frame.voi is not None and frame.voi.window is not None
    assert frame.voi.window.window_center == 500
    assert [p.name for p in frame.presets] == ["file1", "auto"]


def test_enhanced_geometry_per_frame() -> None:
    """Pixel spacing and orientation come from the Pixel Measures / Plane Orientation macros."""
    ds, _ = enhanced()
    assert pixel_aspect_ratio(frame_view(ds, 0)) == 0.5
    assert render_frame(ds, 0).pixel_aspect == 0.5
    axial = orientation_labels(frame_view(ds, 0))
    sagittal = orientation_labels(frame_view(ds, 2))
    assert (axial.left, axial.right, axial.top, axial.bottom) == ("R", "L", "A", "P")
    assert (sagittal.left, sagittal.right, sagittal.top, sagittal.bottom) == ("A", "P", "H", "F")
