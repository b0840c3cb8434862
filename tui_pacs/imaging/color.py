"""Colour images to 8-bit RGB: palette colour and colour-space conversion (PS3.3 C.7.6.3.1.2).

pydicom does the work (``apply_color_lut`` for PALETTE COLOR, C.7.9 and C.7.6.3.1.5-6;
``convert_color_space`` for YBR_FULL and YBR_FULL_422); the glue here picks the step from the
photometric interpretation the codec produced and scales samples deeper than 8 bits.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, convert_color_space

from tui_pacs.imaging.errors import PixelDataError

#: Photometric interpretations this module renders (C.7.6.3.1.2). YBR_ICT and YBR_RCT never
#: reach it: the JPEG 2000 decoders output RGB and say so.
COLOR_PHOTOMETRICS = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR"})


def is_color(photometric: str) -> bool:
    """True for every photometric interpretation that is not MONOCHROME1/2."""
    return not photometric.strip().upper().startswith("MONOCHROME")


def scale_to_8bit(samples: np.ndarray, bits: int) -> np.ndarray:
    """Scale unsigned samples of ``bits`` significant bits onto 0..255, rounding to nearest."""
    if samples.dtype == np.uint8 and bits <= 8:
        return samples
    top = float((1 << bits) - 1)
    return np.clip(np.rint(samples.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)


def render_color(pixels: np.ndarray, view: Dataset, photometric: str) -> np.ndarray:
    """Render one decoded colour frame to uint8 RGB (rows, columns, 3).

    Args:
        pixels: The frame as decoded (``raw=True``: no colour conversion yet).
        view: The frame's attributes (palette descriptors and data live in group 0028).
        photometric: The colour space of ``pixels`` as the decoder reported it.

    Raises:
        PixelDataError: The colour space is not one pydicom converts, or the palette is broken.
    """
    pi = photometric.strip().upper()
    if pi == "PALETTE COLOR":
        try:
            rgb = apply_color_lut(pixels, view)
        except (ValueError, AttributeError, KeyError, IndexError) as exc:
            raise PixelDataError(f"the palette colour lookup table is unusable: {exc}") from None
        # The entry size is the third Palette Color LUT Descriptor value (C.7.6.3.1.5): 8 or 16.
        bits = 8 if rgb.dtype == np.uint8 else 16
        return scale_to_8bit(rgb, bits)
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise PixelDataError(f"{pi} data must have 3 samples per pixel, found shape {pixels.shape}")
    bits = int(view.get("BitsStored", 8) or 8)
    if pi in ("YBR_FULL", "YBR_FULL_422"):
        if pixels.dtype != np.uint8:
            raise PixelDataError(f"{pi} with {bits} bits per sample is not supported")
        # pydicom has upsampled YBR_FULL_422 already; the conversion is the same (C.7.6.3.1.2).
        return convert_color_space(pixels, pi, "RGB")
    if pi == "RGB":
        return scale_to_8bit(pixels, bits)
    raise PixelDataError(f"photometric interpretation {pi} is not supported")
