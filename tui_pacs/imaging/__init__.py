"""The pixel pipeline: pure functions from a data set and frame to an 8-bit image (no terminal).

Modules, in pipeline order: :mod:`.decode` (pydicom decoders), :mod:`.frames` (per-frame
attributes of enhanced objects), :mod:`.grayscale` (Modality LUT, VOI, Presentation LUT),
:mod:`.color` (palette and YBR), :mod:`.overlay` (60xx planes), :mod:`.pipeline` (all of it),
:mod:`.geometry` (aspect, fitting, zoom, orientation), :mod:`.presets` (windows),
:mod:`.compression` (lossy flag), :mod:`.waveform` (ECG), :mod:`.annotations` (corner text).
"""

from __future__ import annotations

from tui_pacs.imaging.errors import ImagingError
from tui_pacs.imaging.pipeline import RenderedFrame, render_decoded, render_frame
from tui_pacs.imaging.presets import Window, WindowPreset

__all__ = [
    "ImagingError",
    "RenderedFrame",
    "Window",
    "WindowPreset",
    "render_decoded",
    "render_frame",
]
