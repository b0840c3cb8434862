"""Windows (VOI linear/sigmoid transforms) and the presets a viewer offers per modality.

A window is the pair PS3.3 C.11.2.1.2 names Window Center (0028,1050) and Window Width (0028,1051),
plus the VOI LUT Function (0028,1056) that says how to apply it (C.11.2.1.3). Values are in the
units the Modality LUT produces (Hounsfield units for CT), never in stored pixel values.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tui_pacs.imaging.errors import ImagingError


class VOILUTFunction(enum.StrEnum):
    """Defined terms of VOI LUT Function (0028,1056), PS3.3 C.11.2.1.3."""

    LINEAR = "LINEAR"
    LINEAR_EXACT = "LINEAR_EXACT"
    SIGMOID = "SIGMOID"


@dataclass(frozen=True, slots=True)
class Window:
    """A window center/width pair (PS3.3 C.11.2.1.2) and how to apply it.

    Attributes:
        window_center: Window Center (0028,1050), in modality output units.
        window_width: Window Width (0028,1051); LINEAR needs >= 1, the others > 0.
        voi_lut_function: VOI LUT Function (0028,1056).
        explanation: Window Center & Width Explanation (0028,1055) or the preset's label.
    """

    window_center: float
    window_width: float
    voi_lut_function: VOILUTFunction = VOILUTFunction.LINEAR
    explanation: str = ""

    def shifted(self, d_center: float, d_width: float) -> Window:
        """The window moved by ``d_center`` and widened by ``d_width`` (a drag), kept valid."""
        return Window(
            self.window_center + d_center,
            max(self.min_width, self.window_width + d_width),
            self.voi_lut_function,
            "",
        )

    @property
    def min_width(self) -> float:
        """Smallest width the function accepts (C.11.2.1.2.1: LINEAR needs >= 1)."""
        return 1.0 if self.voi_lut_function is VOILUTFunction.LINEAR else 1e-6

    def valid(self) -> Window:
        """This window with its width raised to the function's minimum if needed."""
        if self.window_width >= self.min_width and math.isfinite(self.window_center):
            return self
        return Window(
            self.window_center if math.isfinite(self.window_center) else 0.0,
            max(self.min_width, self.window_width if math.isfinite(self.window_width) else 1.0),
            self.voi_lut_function,
            self.explanation,
        )

    def label(self) -> str:
        """``C 40 W 80`` as corner annotations show it."""
        text = f"C {_num(self.window_center)} W {_num(self.window_width)}"
        if self.voi_lut_function is not VOILUTFunction.LINEAR:
            text += f" {self.voi_lut_function.value}"
        return text


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


class PresetSource(enum.StrEnum):
    """Where a preset's window comes from."""

    STANDARD = "standard"
    """A fixed window for the modality (the CT presets)."""
    FILE = "file"
    """One of the data set's own Window Center/Width values (C.11.2)."""
    VOI_LUT = "voi-lut"
    """The data set's VOI LUT Sequence (0028,3010) item, a table rather than a window."""
    AUTO = "auto"
    """Computed from the frame's histogram, ignoring pixel padding."""


@dataclass(frozen=True, slots=True)
class WindowPreset:
    """A named choice of VOI transform a viewer binds to a number key.

    Attributes:
        name: Short key accepted by ``--preset`` and :func:`find_preset` (``brain``, ``file1``).
        label: What the viewer shows (``CT brain``).
        source: Where the window comes from.
        window: The fixed window; None for ``AUTO`` and ``VOI_LUT`` (resolved per frame).
        index: For ``FILE`` and ``VOI_LUT``: which of the data set's values (0-based).
    """

    name: str
    label: str
    source: PresetSource
    window: Window | None = None
    index: int = 0


def _ct(name: str, label: str, center: float, width: float) -> WindowPreset:
    return WindowPreset(
        name, label, PresetSource.STANDARD, Window(center, width, explanation=label)
    )


#: CT windows in Hounsfield units, the values radiology teaching material gives.
CT_PRESETS: tuple[WindowPreset, ...] = (
    _ct("brain", "CT brain", 40, 80),
    _ct("subdural", "CT subdural", 75, 215),
    _ct("stroke", "CT stroke", 40, 40),
    _ct("lung", "CT lung", -600, 1500),
    _ct("mediastinum", "CT mediastinum", 50, 350),
    _ct("abdomen", "CT abdomen", 40, 400),
    _ct("liver", "CT liver", 30, 150),
    _ct("bone", "CT bone", 400, 1800),
)

AUTO_PRESET = WindowPreset("auto", "Auto (histogram)", PresetSource.AUTO)


def file_windows(
    window_center: object, window_width: object, function: object = None, explanation: object = None
) -> tuple[Window, ...]:
    """The windows a VOI LUT Module carries (PS3.3 C.11.2): one per Window Center/Width value pair.

    Args:
        window_center: The (0028,1050) value (a number or a list of numbers), or None.
        window_width: The (0028,1051) value, or None.
        function: VOI LUT Function (0028,1056); unknown values fall back to LINEAR.
        explanation: Window Center & Width Explanation (0028,1055), one text per pair.

    Returns:
        The valid pairs in file order; pairs with a non-positive width are dropped.
    """
    centers = _as_list(window_center)
    widths = _as_list(window_width)
    texts = [str(t) for t in _as_list(explanation)]
    try:
        func = VOILUTFunction(str(function or "LINEAR").strip().upper())
    except ValueError:
        func = VOILUTFunction.LINEAR
    found = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        try:
            center, width = float(c), float(w)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
            continue
        found.append(Window(center, width, func, texts[i] if i < len(texts) else ""))
    return tuple(found)


def _as_list(value: object) -> list[object]:
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def presets_for(
    modality: str, windows: Sequence[Window] = (), voi_luts: Sequence[str] = ()
) -> tuple[WindowPreset, ...]:
    """Presets for an image: the standard ones of its modality, then its own VOI, then auto.

    Args:
        modality: Modality (0008,0060); CT gets :data:`CT_PRESETS`.
        windows: The frame's own windows (:func:`file_windows`).
        voi_luts: Explanations of the frame's VOI LUT Sequence items (one per item).

    Returns:
        The presets in the order a viewer binds them to the keys 1, 2, 3...
    """
    found: list[WindowPreset] = list(CT_PRESETS) if modality.upper() == "CT" else []
    for i, win in enumerate(windows):
        label = win.explanation or f"File window {i + 1}"
        found.append(WindowPreset(f"file{i + 1}", label, PresetSource.FILE, win, i))
    for i, text in enumerate(voi_luts):
        found.append(
            WindowPreset(
                f"voi-lut{i + 1}", text or f"VOI LUT {i + 1}", PresetSource.VOI_LUT, None, i
            )
        )
    found.append(AUTO_PRESET)
    return tuple(found)


def find_preset(presets: Sequence[WindowPreset], name: str) -> WindowPreset:
    """The preset called ``name``: ``brain``, ``file1`` (``file``: the first file window), ``auto``.

    Raises:
        ImagingError: No such preset for this image; the message lists the ones there are.
    """
    key = name.strip().lower()
    aliases = {"file": "file1", "voi-lut": "voi-lut1", "lut": "voi-lut1"}
    key = aliases.get(key, key)
    for preset in presets:
        if preset.name == key:
            return preset
    names = ", ".join(p.name for p in presets)
    raise ImagingError(
        f"no window preset {name!r} for this image (choose from: {names})", "Unknown preset"
    )


def parse_window(text: str) -> Window:
    """A free window from ``C,W`` text (``40,80``; ``-600,1500``).

    Raises:
        ImagingError: The text is not two numbers or the width is not positive.
    """
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    try:
        center, width = (float(p) for p in parts)
    except ValueError:
        raise ImagingError(
            f"window {text!r} is not CENTER,WIDTH (e.g. 40,80)", "Invalid window"
        ) from None
    if not (math.isfinite(center) and math.isfinite(width)) or width < 1:
        raise ImagingError(f"window width in {text!r} must be at least 1", "Invalid window")
    return Window(center, width)
