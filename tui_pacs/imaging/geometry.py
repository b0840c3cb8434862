"""Geometry: pixel aspect ratio, fitting an image into a box, zoom and pan, orientation labels.

Pixel Spacing (0028,0030, PS3.3 10.7.1.3) is "row spacing \\ column spacing": the first value
is the vertical size of a pixel, the second the horizontal. Pixel Aspect Ratio (0028,0034,
C.7.6.3.1.7) is "vertical \\ horizontal" too. An image is shown with its physical proportions:
non-square pixels are stretched along one axis, never squeezed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

#: Default limit on how far a small image is enlarged to fill a box (native pixels -> shown).
DEFAULT_MAX_FACTOR = 4.0


def pixel_aspect_ratio(view: Dataset) -> float:
    """Vertical / horizontal size of one pixel.

    From Pixel Spacing (10.7.1.3; per frame from the Pixel Measures macro, C.7.6.16.2.1), else
    Imager Pixel Spacing (0018,1164), else Nominal Scanned Pixel Spacing (0018,2010), else Pixel
    Aspect Ratio (C.7.6.3.1.7); 1.0 when none is usable.
    """
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        ratio = _ratio(view.get(keyword))
        if ratio is not None:
            return ratio
    return _ratio(view.get("PixelAspectRatio")) or 1.0


def _ratio(value: object) -> float | None:
    try:
        vertical, horizontal = (float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    if vertical > 0 and horizontal > 0 and math.isfinite(vertical / horizontal):
        return vertical / horizontal
    return None


def display_size(columns: int, rows: int, aspect: float = 1.0) -> tuple[float, float]:
    """(width, height) that shows ``columns`` x ``rows`` pixels of vertical/horizontal ``aspect``
    in their physical proportions, enlarging the shorter physical axis, never shrinking one."""
    if aspect >= 1.0:
        return float(columns), rows * aspect
    return columns / aspect, float(rows)


def fit_size(
    columns: int,
    rows: int,
    box: tuple[int, int],
    *,
    aspect: float = 1.0,
    max_factor: float = DEFAULT_MAX_FACTOR,
) -> tuple[int, int]:
    """The largest (width, height) that fits ``box`` keeping the physical proportions.

    Args:
        columns: Native width in pixels.
        rows: Native height in pixels.
        box: (width, height) available, in output pixels.
        aspect: Pixel aspect ratio (vertical / horizontal), :func:`pixel_aspect_ratio`.
        max_factor: A small image is not enlarged beyond this factor of its display size.

    Returns:
        Output size in pixels, each at least 1.
    """
    width, height = display_size(columns, rows, aspect)
    scale = min(box[0] / width, box[1] / height, max_factor)
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True, slots=True)
class Viewport:
    """What part of a native frame to show and at what size.

    Attributes:
        source: (left, top, right, bottom) in native pixel coordinates (floats; PIL resamples
            exactly this rectangle).
        size: (width, height) of the output image.
        zoom: Output pixels per native pixel along the horizontal axis (what "Zoom" shows).
        center: The native (x, y) point at the centre of the output, after clamping.
    """

    source: tuple[float, float, float, float]
    size: tuple[int, int]
    zoom: float
    center: tuple[float, float]


def viewport(
    columns: int,
    rows: int,
    box: tuple[int, int],
    *,
    aspect: float = 1.0,
    zoom: float = 1.0,
    center: tuple[float, float] | None = None,
    max_factor: float = DEFAULT_MAX_FACTOR,
) -> Viewport:
    """Fit the frame into ``box`` (zoom 1), or magnify by ``zoom`` around ``center`` and crop.

    The shown rectangle never leaves the image: panning stops at its edges, and an image smaller
    than the box at this zoom is shown whole.

    Args:
        columns: Native width.
        rows: Native height.
        box: (width, height) available.
        aspect: Pixel aspect ratio (vertical / horizontal).
        zoom: Magnification relative to the fitted size (1 = fit).
        center: Native (x, y) to centre on; the image centre by default.
        max_factor: Enlargement limit of the fitted size (zoom goes beyond it on purpose).
    """
    fit_w, fit_h = fit_size(columns, rows, box, aspect=aspect, max_factor=max_factor)
    zoom = max(zoom, 1e-3)
    sx, sy = fit_w / columns * zoom, fit_h / rows * zoom
    vis_w, vis_h = min(columns, box[0] / sx), min(rows, box[1] / sy)
    cx, cy = center if center is not None else (columns / 2, rows / 2)
    cx = min(max(cx, vis_w / 2), columns - vis_w / 2)
    cy = min(max(cy, vis_h / 2), rows - vis_h / 2)
    left, top = cx - vis_w / 2, cy - vis_h / 2
    size = (max(1, min(box[0], round(vis_w * sx))), max(1, min(box[1], round(vis_h * sy))))
    return Viewport((left, top, left + vis_w, top + vis_h), size, sx, (cx, cy))


def scale_image(image: Image.Image, port: Viewport, *, smooth: bool = True) -> Image.Image:
    """Resample the viewport's rectangle of ``image`` to its output size.

    Shrinking averages whole pixels (BOX: no ringing, the mean is preserved); enlarging
    interpolates (BILINEAR), or repeats pixels when ``smooth`` is False (to inspect values).
    """
    if port.size == image.size and port.source == (
        0.0,
        0.0,
        float(image.width),
        float(image.height),
    ):
        return image
    if not smooth:
        method = Image.Resampling.NEAREST
    elif port.size[0] < port.source[2] - port.source[0]:
        method = Image.Resampling.BOX
    else:
        method = Image.Resampling.BILINEAR
    return image.resize(port.size, method, box=port.source)


def fit_image(
    image: Image.Image,
    box: tuple[int, int],
    *,
    aspect: float = 1.0,
    max_factor: float = DEFAULT_MAX_FACTOR,
) -> Image.Image:
    """``image`` scaled to fit ``box`` with its physical proportions (thumbnails, previews)."""
    port = viewport(image.width, image.height, box, aspect=aspect, max_factor=max_factor)
    return scale_image(image, port)


@dataclass(frozen=True, slots=True)
class OrientationLabels:
    """Patient directions at the four edges of the image (``L``, ``PH``...), empty when unknown."""

    top: str = ""
    bottom: str = ""
    left: str = ""
    right: str = ""


_OPPOSITE = str.maketrans("LRAPHF", "RLPAFH")


def direction_letters(vector: tuple[float, float, float], *, threshold: float = 1e-4) -> str:
    """Letters for a direction in the patient coordinate system (PS3.3 C.7.6.2.1.1).

    x grows to the patient's Left, y to Posterior, z to Head. Every axis whose component
    exceeds ``threshold`` contributes its letter, the largest component first (an oblique
    direction reads ``LP``), as in D. Clunie's dicom3tools.
    """
    letters = []
    for axis in sorted(range(3), key=lambda i: -abs(vector[i])):
        value = vector[axis]
        if abs(value) <= threshold:
            continue
        letters.append(("LR", "PA", "HF")[axis][0 if value > 0 else 1])
    return "".join(letters)


def orientation_labels(view: Dataset) -> OrientationLabels:
    """Edge labels from Image Orientation (Patient) (0020,0037), else Patient Orientation.

    C.7.6.2.1.1: the first three values are the direction cosines of the first row (towards
    the right edge), the last three of the first column (towards the bottom edge).
    C.7.6.1.1.1: Patient Orientation (0020,0020) gives the same two directions as letters.
    """
    iop = view.get("ImageOrientationPatient")
    try:
        values = [float(v) for v in iop] if iop is not None else []
    except (TypeError, ValueError):
        values = []
    if len(values) == 6 and all(math.isfinite(v) for v in values):
        row = np.array(values[:3])
        col = np.array(values[3:])
        return OrientationLabels(
            top=direction_letters(tuple(-col)),
            bottom=direction_letters(tuple(col)),
            left=direction_letters(tuple(-row)),
            right=direction_letters(tuple(row)),
        )
    po = view.get("PatientOrientation")
    if po is not None and not isinstance(po, str) and len(po) == 2:
        right, bottom = (str(v).strip().upper() for v in po)
        return OrientationLabels(
            top=bottom.translate(_OPPOSITE),
            bottom=bottom,
            left=right.translate(_OPPOSITE),
            right=right,
        )
    return OrientationLabels()
