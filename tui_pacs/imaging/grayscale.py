"""The grayscale pipeline (PS3.4 N.2.1): Modality LUT, VOI (LUT or window), Presentation LUT.

Each stage is pydicom's function (``apply_modality_lut``, ``apply_windowing``, ``apply_voi``,
``apply_presentation_lut``); the glue here is what they leave to the caller:

- the output range: pydicom windows into the input's own range (e.g. -32768..32767 for signed
  16-bit data); we window into exactly 0..255 by handing it a VOI data set that declares an
  unsigned 8-bit output, so the standard's formulas produce display values directly;
- MONOCHROME1 and Presentation LUT Shape INVERSE invert once, together, never twice;
- an automatic window from the histogram that ignores pixel padding;
- speed: integer data is pushed through the stages once per distinct stored value (a table of
  at most 2**20 entries), then the frame is one table lookup, exactly as if every pixel had been
  transformed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_presentation_lut, apply_voi, apply_windowing
from pydicom.valuerep import DSfloat

from tui_pacs.imaging.errors import PixelDataError
from tui_pacs.imaging.presets import PresetSource, Window, WindowPreset, file_windows

#: Fraction of (non-padding) pixels an automatic window leaves out at each end of the histogram.
AUTO_WINDOW_CLIP = 0.005
#: Integer frames whose stored values span fewer values than this are transformed by table.
_MAX_TABLE = 1 << 20


@dataclass(frozen=True, slots=True)
class VOIChoice:
    """The VOI transform a rendered frame used (what the corner annotation shows).

    Attributes:
        source: Where it came from.
        window: The window applied; None when a VOI LUT table was.
        label: ``C 40 W 80`` or the VOI LUT's explanation.
    """

    source: PresetSource | str
    window: Window | None
    label: str


def frame_windows(view: Dataset) -> tuple[Window, ...]:
    """The frame's own windows: Window Center/Width pairs of its VOI LUT Module (C.11.2)."""
    return file_windows(
        view.get("WindowCenter"),
        view.get("WindowWidth"),
        view.get("VOILUTFunction"),
        view.get("WindowCenterWidthExplanation"),
    )


def frame_voi_luts(view: Dataset) -> tuple[str, ...]:
    """Explanations of the frame's VOI LUT Sequence (0028,3010) items, one per usable table."""
    found = []
    for item in view.get("VOILUTSequence") or ():
        if item.get("LUTDescriptor") is not None and item.get("LUTData") is not None:
            found.append(str(item.get("LUTExplanation", "") or ""))
    return tuple(found)


def padding_range(view: Dataset) -> tuple[int, int] | None:
    """Stored values that are padding, not patient (PS3.3 C.7.5.1.1.2), as an inclusive range.

    Pixel Padding Value (0028,0120) alone marks one value; with Pixel Padding Range Limit
    (0028,0121) every value between the two (either order) is padding. Both are stored values,
    compared before the Modality LUT. A value read as unsigned from signed data (the VR is
    US or SS depending on Pixel Representation) is reinterpreted as signed.
    """
    value = _int_or_none(view.get("PixelPaddingValue"))
    if value is None:
        return None
    limit = _int_or_none(view.get("PixelPaddingRangeLimit"))
    if int(view.get("PixelRepresentation", 0) or 0) == 1:
        bits = int(view.get("BitsAllocated", 16) or 16)
        value, limit = _signed(value, bits), (_signed(limit, bits) if limit is not None else None)
    if limit is None:
        return value, value
    return min(value, limit), max(value, limit)


def _int_or_none(value: object) -> int | None:
    if value is None or value == "" or isinstance(value, bytes):
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def window_to_8bit(values: np.ndarray, window: Window) -> np.ndarray:
    """Apply a window (PS3.3 C.11.2.1.2 LINEAR, C.11.2.1.3 LINEAR_EXACT and SIGMOID) onto 0..255.

    pydicom's ``apply_windowing`` maps onto the output range the data set declares; we give it
    one that declares 8-bit unsigned output (y_min 0, y_max 255), so LINEAR sends everything at or
    below the window to exactly 0, above it to exactly 255, and SIGMOID stays within (0, 255).

    Returns:
        float64 values in [0, 255] (round with :func:`to_uint8`).
    """
    window = window.valid()
    voi = Dataset()
    voi.PhotometricInterpretation = "MONOCHROME2"
    voi.BitsStored = 8
    voi.PixelRepresentation = 0
    voi.WindowCenter = DSfloat(float(window.window_center), auto_format=True)
    voi.WindowWidth = DSfloat(float(window.window_width), auto_format=True)
    voi.VOILUTFunction = window.voi_lut_function.value
    return apply_windowing(values, voi)


def voi_lut_to_8bit(values: np.ndarray, view: Dataset, index: int = 0) -> np.ndarray:
    """Apply item ``index`` of the VOI LUT Sequence (PS3.3 C.11.2.1.1) and scale it to 0..255.

    The table's output range is 0..2**n-1 with n the third LUT Descriptor value (C.11.2.1.1);
    pydicom's ``apply_voi`` looks the values up, we rescale that range to 8 bits.
    """
    ints = values
    if not np.issubdtype(values.dtype, np.integer):
        ints = np.rint(values).astype(np.int64)
    item = view.VOILUTSequence[index]
    depth = int(item.LUTDescriptor[2])
    one = Dataset()
    one.VOILUTSequence = [item]
    if hasattr(view, "file_meta"):
        one.file_meta = view.file_meta
    one.set_original_encoding(*getattr(view, "original_encoding", (False, True)))
    try:
        out = apply_voi(ints, one, 0)
    except (NotImplementedError, ValueError, AttributeError, IndexError) as exc:
        raise PixelDataError(f"the VOI LUT cannot be applied: {exc}") from None
    return out.astype(np.float64) * (255.0 / ((1 << depth) - 1))


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Round display values to the nearest integer in 0..255."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def presentation_lut(view: Dataset, photometric: str) -> np.ndarray | None:
    """The 256-entry table from VOI output to P-values, or None for identity.

    PS3.3 C.7.6.3.1.2: MONOCHROME1 means the minimum value is displayed white, i.e. an
    inversion after the VOI stage. A Presentation LUT Shape (2050,0020) of INVERSE (C.11.6.1)
    asks for the same inversion, and the DX and enhanced image modules require INVERSE exactly
    when the data is MONOCHROME1: both describe one inversion, so it is applied once. An
    IDENTITY shape on MONOCHROME1 data (a known vendor error) does not cancel the inversion:
    the photometric interpretation describes the pixels. A Presentation LUT Sequence
    (2050,0010, C.11.4) is applied as a table through pydicom's ``apply_presentation_lut``.
    """
    domain = np.arange(256, dtype=np.uint16)
    table: np.ndarray | None = None
    if view.get("PresentationLUTSequence"):
        item = view.PresentationLUTSequence[0]
        plut = Dataset()
        plut.PresentationLUTSequence = [item]
        try:
            out = apply_presentation_lut(domain, plut)
            depth = int(item.LUTDescriptor[2])
            table = to_uint8(out.astype(np.float64) * (255.0 / ((1 << depth) - 1)))
        except (NotImplementedError, ValueError, AttributeError, IndexError, TypeError):
            table = None
    shape = str(view.get("PresentationLUTShape", "") or "").strip().upper()
    if photometric.strip().upper() == "MONOCHROME1" or shape == "INVERSE":
        inverse = Dataset()
        inverse.PresentationLUTShape = "INVERSE"
        inverted = apply_presentation_lut(domain, inverse).astype(np.uint8)
        table = inverted if table is None else inverted[table]
    return table


def auto_window(values: np.ndarray, counts: np.ndarray | None = None) -> Window:
    """A window spanning the histogram between its 0.5th and 99.5th percentiles.

    Like DCMTK's histogram window: the extremes (a few hot pixels, metal, the table) do not
    flatten the contrast of the rest. The percentiles are the inverted CDF (smallest value whose
    cumulative count reaches the fraction). With LINEAR (C.11.2.1.2.1) the low value maps to
    exactly 0 and the high value to exactly 255.

    Args:
        values: Modality values; with ``counts``, the distinct values of a histogram.
        counts: How many pixels have each of ``values`` (padding already removed), or None
            when ``values`` are the pixels themselves (padding already removed).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if counts is None:
        c = np.ones(v.shape, dtype=np.int64)
    else:
        c = np.asarray(counts, dtype=np.int64).ravel()
    keep = (c > 0) & np.isfinite(v)
    v, c = v[keep], c[keep]
    if v.size == 0:
        return Window(0.5, 1.0, explanation="Auto")
    order = np.argsort(v, kind="stable")
    v, cum = v[order], np.cumsum(c[order])
    total = float(cum[-1])
    low = v[min(int(np.searchsorted(cum, total * AUTO_WINDOW_CLIP, side="left")), v.size - 1)]
    high = v[
        min(int(np.searchsorted(cum, total * (1 - AUTO_WINDOW_CLIP), side="left")), v.size - 1)
    ]
    width = max(float(high - low) + 1.0, 1.0)
    return Window((float(low) + float(high) + 1.0) / 2.0, width, explanation="Auto")


def render_grayscale(
    pixels: np.ndarray,
    view: Dataset,
    photometric: str,
    choice: Window | WindowPreset | None = None,
    *,
    invert: bool = False,
) -> tuple[np.ndarray, VOIChoice]:
    """Render stored values to 8-bit display values (PS3.4 N.2.1 grayscale pipeline).

    Order: Modality LUT or rescale (C.11.1), then the VOI stage (C.11.2: a VOI LUT table or a
    window), then the Presentation LUT (MONOCHROME1 / INVERSE, C.11.4, C.11.6), then the viewer's
    own invert toggle.

    Args:
        pixels: Stored values of one frame (rows, columns).
        view: The frame's attributes (:func:`~tui_pacs.imaging.frames.frame_view`).
        photometric: MONOCHROME1 or MONOCHROME2.
        choice: A free window, a preset, or None for the image's default: its first VOI LUT
            table, else its first window, else an automatic window.
        invert: Invert the result once more (the viewer's invert key).

    Returns:
        The uint8 frame and the VOI transform used.
    """
    integer = np.issubdtype(pixels.dtype, np.integer) and pixels.size > 0
    lo = int(pixels.min()) if integer else 0
    hi = int(pixels.max()) if integer else 0
    if integer and hi - lo < _MAX_TABLE:
        domain = np.arange(lo, hi + 1, dtype=np.int64)
        index = pixels if lo == 0 and pixels.dtype.kind == "u" else pixels.astype(np.int64) - lo
        values = apply_modality_lut(domain, view)

        def histogram() -> np.ndarray:
            counts = np.bincount(index.ravel(), minlength=domain.size)
            pad = padding_range(view)
            if pad is not None:
                a, b = max(pad[0], lo) - lo, min(pad[1], hi) - lo
                if a <= b:
                    counts[a : b + 1] = 0
            return counts

        table, voi = _voi(values, view, choice, lambda: auto_window(values, histogram()))
        table = _present(table, view, photometric, invert)
        return table[index], voi

    stored = pixels.astype(np.float64)
    values = apply_modality_lut(stored, view)

    def auto() -> Window:
        pad = padding_range(view)
        keep = values if pad is None else values[(stored < pad[0]) | (stored > pad[1])]
        return auto_window(keep)

    out, voi = _voi(values, view, choice, auto)
    return _present(out, view, photometric, invert), voi


def _voi(
    values: np.ndarray, view: Dataset, choice: Window | WindowPreset | None, auto: object
) -> tuple[np.ndarray, VOIChoice]:
    """Resolve the VOI choice and apply it; returns uint8 output and what was used."""
    window: Window | None = None
    source: PresetSource | str = "user"
    lut_index: int | None = None
    if isinstance(choice, Window):
        window = choice
    elif isinstance(choice, WindowPreset):
        source = choice.source
        if choice.source is PresetSource.AUTO:
            window = auto()  # type: ignore[operator]
        elif choice.source is PresetSource.VOI_LUT:
            lut_index = choice.index
        else:
            window = choice.window
    else:
        luts, windows = frame_voi_luts(view), frame_windows(view)
        if luts:
            source, lut_index = PresetSource.VOI_LUT, 0
        elif windows:
            source, window = PresetSource.FILE, windows[0]
        else:
            source, window = PresetSource.AUTO, auto()  # type: ignore[operator]
    if lut_index is not None:
        luts = frame_voi_luts(view)
        if lut_index >= len(luts):
            raise PixelDataError(f"the image has no VOI LUT {lut_index + 1}")
        out = to_uint8(voi_lut_to_8bit(values, view, lut_index))
        label = luts[lut_index] or f"VOI LUT {lut_index + 1}"
        return out, VOIChoice(PresetSource.VOI_LUT, None, label)
    assert window is not None
    window = window.valid()
    return to_uint8(window_to_8bit(values, window)), VOIChoice(source, window, window.label())


def _present(out: np.ndarray, view: Dataset, photometric: str, invert: bool) -> np.ndarray:
    table = presentation_lut(view, photometric)
    if table is not None:
        out = table[out]
    if invert:
        out = 255 - out
    return out
