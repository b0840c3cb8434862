"""Overlay planes (PS3.3 C.9.2, groups 6000-601E) drawn onto the rendered frame.

pydicom's ``Dataset.overlay_array`` unpacks Overlay Data (60xx,3000); the glue here places it at
Overlay Origin (60xx,0050) on the right frame of a multi-frame image and burns it in.
Overlays embedded in unused high bits of Pixel Data (retired in 2004) are not drawn: pydicom
clears those bits when it decodes.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

#: Display value for overlay bits set to 1 (white on both grayscale and RGB output).
OVERLAY_VALUE = 255


def overlay_groups(ds: Dataset) -> list[int]:
    """Groups 0x6000, 0x6002 ... 0x601E that carry Overlay Data (C.9.2: even groups only)."""
    return [g for g in range(0x6000, 0x6020, 2) if (g, 0x3000) in ds]


def overlay_mask(
    ds: Dataset, group: int, frame_index: int, rows: int, columns: int
) -> np.ndarray | None:
    """The overlay plane ``group`` over frame ``frame_index`` (0-based), as a bool image.

    C.9.2.1.1: Overlay Origin is the 1-based (row, column) of the overlay's first bit on the image
    and may lie outside it; C.9.2.1.2 (multi-frame overlays): Image Frame Origin (60xx,0051) is the
    1-based image frame the overlay's first frame lies on, Number of Frames in Overlay (60xx,0015)
    how many follow.

    Returns:
        A (rows, columns) mask, or None when the overlay does not cover this frame or is broken.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bits = ds.overlay_array(group)
    except Exception as exc:  # a broken overlay must not hide the image
        log.warning("overlay %04X unusable: %s", group, exc)
        return None
    if bits.ndim == 3:
        first = int(ds.get((group, 0x0051)).value if (group, 0x0051) in ds else 1)
        k = frame_index + 1 - first
        if not 0 <= k < bits.shape[0]:
            return None
        bits = bits[k]
    origin = ds.get((group, 0x0050))
    r0, c0 = (int(origin.value[0]) - 1, int(origin.value[1]) - 1) if origin is not None else (0, 0)
    mask = np.zeros((rows, columns), dtype=bool)
    top, left = max(r0, 0), max(c0, 0)
    bottom, right = min(r0 + bits.shape[0], rows), min(c0 + bits.shape[1], columns)
    if top < bottom and left < right:
        mask[top:bottom, left:right] = bits[top - r0 : bottom - r0, left - c0 : right - c0] != 0
    return mask


def draw_overlays(image: np.ndarray, ds: Dataset, frame_index: int) -> np.ndarray:
    """Burn every overlay plane of ``ds`` for this frame into a uint8 image (gray or RGB).

    Returns ``image`` itself when there is nothing to draw, else a new array.
    """
    groups = overlay_groups(ds)
    if not groups:
        return image
    rows, columns = image.shape[:2]
    out = image
    for group in groups:
        mask = overlay_mask(ds, group, frame_index, rows, columns)
        if mask is None or not mask.any():
            continue
        if out is image:
            out = image.copy()
        out[mask] = OVERLAY_VALUE
    return out
