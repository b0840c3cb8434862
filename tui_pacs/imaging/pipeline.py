"""One frame of a data set to an 8-bit image at native resolution: the whole pixel pipeline.

decode (PS3.5, pydicom) -> grayscale pipeline (PS3.4 N.2.1) or colour conversion
(PS3.3 C.7.6.3.1.2) -> overlays (C.9.2) -> uint8 array. Scaling to a screen is separate
(:mod:`tui_pacs.imaging.geometry`) so a window change never decodes again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

from tui_pacs.imaging.color import is_color, render_color
from tui_pacs.imaging.compression import is_lossy
from tui_pacs.imaging.decode import DecodedFrame, decode_frame
from tui_pacs.imaging.errors import PixelDataError
from tui_pacs.imaging.geometry import pixel_aspect_ratio
from tui_pacs.imaging.grayscale import VOIChoice, frame_voi_luts, frame_windows, render_grayscale
from tui_pacs.imaging.overlay import draw_overlays
from tui_pacs.imaging.presets import Window, WindowPreset, presets_for


@dataclass(frozen=True, slots=True, eq=False)
class RenderedFrame:
    """A frame ready to show: 8-bit pixels at native resolution and how they were made.

    Attributes:
        pixels: uint8 (rows, columns) for grayscale, (rows, columns, 3) RGB for colour.
        index: 0-based frame number.
        number_of_frames: Frames in the instance.
        pixel_aspect: Vertical / horizontal pixel size (scale with it, never stretch otherwise).
        voi: The VOI transform used (None for colour images).
        presets: The window presets this frame offers (empty for colour images).
        lossy: The image has been lossy compressed (show it).
        inverted: The displayed polarity is inverted relative to MONOCHROME2 (MONOCHROME1,
            INVERSE, or the viewer's invert, counted once each way).
    """

    pixels: np.ndarray
    index: int
    number_of_frames: int
    pixel_aspect: float
    voi: VOIChoice | None
    presets: tuple[WindowPreset, ...]
    lossy: bool
    inverted: bool

    @property
    def rows(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def columns(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def is_color(self) -> bool:
        return self.pixels.ndim == 3

    def to_pil(self) -> Image.Image:
        """The frame as a PIL image (mode ``L`` or ``RGB``), sharing no memory with ``pixels``."""
        return Image.fromarray(self.pixels, "RGB" if self.is_color else "L")


def frame_presets(frame: DecodedFrame) -> tuple[WindowPreset, ...]:
    """The presets for a decoded grayscale frame (:func:`~tui_pacs.imaging.presets.presets_for`)."""
    if is_color(frame.photometric_interpretation):
        return ()
    view = frame.view
    return presets_for(
        str(view.get("Modality", "") or ""), frame_windows(view), frame_voi_luts(view)
    )


def render_decoded(
    frame: DecodedFrame,
    ds: Dataset,
    *,
    window: Window | WindowPreset | None = None,
    invert: bool = False,
    overlays: bool = True,
) -> RenderedFrame:
    """Turn a decoded frame into display values (cheap: call again on every window change).

    Args:
        frame: From :func:`~tui_pacs.imaging.decode.decode_frame`.
        ds: The full data set (overlays and the lossy flag live outside the frame view).
        window: A free window, a preset, or None for the image's own default.
        invert: The viewer's invert toggle, on top of MONOCHROME1/INVERSE.
        overlays: Burn in overlay planes (60xx).

    Raises:
        PixelDataError: The frame cannot be rendered (unsupported colour space, broken LUT).
    """
    pi = frame.photometric_interpretation.strip().upper()
    view = frame.view
    voi: VOIChoice | None = None
    inverted = invert
    if is_color(pi):
        out = render_color(frame.pixels, view, pi)
        if invert:
            out = 255 - out
    else:
        if frame.pixels.ndim != 2:
            raise PixelDataError(f"{pi} data must have 1 sample per pixel")
        try:
            out, voi = render_grayscale(frame.pixels, view, pi, window, invert=invert)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            raise PixelDataError(f"the grayscale transforms cannot be applied: {exc}") from None
        shape = str(view.get("PresentationLUTShape", "") or "").strip().upper()
        inverted = (pi == "MONOCHROME1" or shape == "INVERSE") != invert
    if overlays:
        out = draw_overlays(out, ds, frame.index)
    return RenderedFrame(
        pixels=np.ascontiguousarray(out),
        index=frame.index,
        number_of_frames=frame.number_of_frames,
        pixel_aspect=pixel_aspect_ratio(view),
        voi=voi,
        presets=frame_presets(frame),
        lossy=is_lossy(ds),
        inverted=inverted,
    )


def render_frame(
    ds: Dataset,
    index: int = 0,
    *,
    window: Window | WindowPreset | None = None,
    invert: bool = False,
    overlays: bool = True,
) -> RenderedFrame:
    """Decode and render frame ``index`` (0-based) of ``ds`` (see :func:`render_decoded`).

    Raises:
        ImagingError: Any subclass: no image, missing codec, broken data, no such frame.
    """
    return render_decoded(
        decode_frame(ds, index), ds, window=window, invert=invert, overlays=overlays
    )
