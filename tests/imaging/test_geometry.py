"""Pixel aspect ratio, fitting into a box, zoom and pan, orientation letters."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset

from tests.imaging.synthetic import grayscale, read
from tui_pacs.imaging import render_frame
from tui_pacs.imaging.geometry import (
    direction_letters,
    fit_image,
    fit_size,
    orientation_labels,
    pixel_aspect_ratio,
    viewport,
)


def _ds(**attributes: object) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def test_pixel_aspect_ratio_sources_in_order() -> None:
    """Pixel Spacing, then Imager Pixel Spacing, then Pixel Aspect Ratio; 1 otherwise."""
    assert pixel_aspect_ratio(_ds(PixelSpacing=[0.5, 0.25])) == 2.0
    assert pixel_aspect_ratio(_ds(ImagerPixelSpacing=[0.1, 0.2], PixelAspectRatio=[3, 1])) == 0.5
    assert pixel_aspect_ratio(_ds(PixelAspectRatio=[4, 3])) == pytest.approx(4 / 3)
    assert pixel_aspect_ratio(_ds(PixelSpacing=[0, 1])) == 1.0
    assert pixel_aspect_ratio(_ds()) == 1.0
    assert render_frame(read("CT_small.dcm")).pixel_aspect == 1.0


def test_fit_keeps_proportions_and_caps_enlargement() -> None:
    """A 512x256 image fits a 100x100 box as 100x50; a 10x10 one grows at most 4x."""
    assert fit_size(512, 256, (100, 100)) == (100, 50)
    assert fit_size(256, 512, (100, 100)) == (50, 100)
    assert fit_size(10, 10, (1000, 800)) == (40, 40)
    assert fit_size(10, 10, (1000, 800), max_factor=1) == (10, 10)
    assert fit_size(3, 1000, (10, 10)) == (1, 10)


def test_non_square_pixels_are_stretched_not_squeezed() -> None:
    """Rows twice as tall as columns are wide: 100x100 pixels show as 100 wide, 200 tall."""
    assert fit_size(100, 100, (1000, 1000), aspect=2.0, max_factor=1) == (100, 200)
    assert fit_size(100, 100, (1000, 1000), aspect=0.5, max_factor=1) == (200, 100)
    assert fit_size(100, 100, (50, 50), aspect=2.0) == (25, 50)
    image = Image.fromarray(np.zeros((100, 100), np.uint8))
    assert fit_image(image, (300, 300), aspect=2.0).size == (150, 300)


def test_zoom_and_pan_stay_inside_the_image() -> None:
    """Zoom 2 on a fitted 100x100 image in a 100x100 box shows a 50x50 native region."""
    port = viewport(100, 100, (100, 100), zoom=2.0)
    assert port.source == (25.0, 25.0, 75.0, 75.0) and port.size == (100, 100)
    assert port.zoom == 2.0
    corner = viewport(100, 100, (100, 100), zoom=2.0, center=(0, 0))
    assert corner.source == (0.0, 0.0, 50.0, 50.0)
    whole = viewport(100, 100, (100, 100), zoom=0.5)
    assert whole.source == (0.0, 0.0, 100.0, 100.0) and whole.size == (50, 50)


def test_direction_letters_follow_the_patient_axes() -> None:
    """+x is Left, +y Posterior, +z Head; oblique directions list the major axis first."""
    assert direction_letters((1, 0, 0)) == "L"
    assert direction_letters((0, -1, 0)) == "A"
    assert direction_letters((0, 0, -1)) == "F"
    assert direction_letters((0.8, -0.6, 0)) == "LA"
    assert direction_letters((0.1, 0.0, 0.99)) == "HL"


def test_orientation_labels_for_the_standard_planes() -> None:
    """Axial R/L/A/P, coronal R/L/H/F, sagittal A/P/H/F at the left/right/top/bottom edges."""
    cases = {
        (1, 0, 0, 0, 1, 0): ("R", "L", "A", "P"),
        (1, 0, 0, 0, 0, -1): ("R", "L", "H", "F"),
        (0, 1, 0, 0, 0, -1): ("A", "P", "H", "F"),
    }
    for iop, expected in cases.items():
        labels = orientation_labels(_ds(ImageOrientationPatient=list(iop)))
        assert (labels.left, labels.right, labels.top, labels.bottom) == expected
    assert orientation_labels(read("CT_small.dcm")).right == "L"


def test_patient_orientation_fallback() -> None:
    """Without Image Orientation (Patient), Patient Orientation (e.g. a chest PA: L\\F) labels."""
    ds = grayscale(np.zeros((2, 2), np.uint8), PatientOrientation=["L", "F"])
    labels = orientation_labels(ds)
    assert (labels.left, labels.right, labels.top, labels.bottom) == ("R", "L", "H", "F")
    assert orientation_labels(_ds()).top == ""
