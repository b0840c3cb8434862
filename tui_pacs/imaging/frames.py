"""Per-frame attributes of single-frame, multi-frame and enhanced multi-frame images.

Enhanced objects (PS3.3 C.7.6.16, Multi-frame Functional Groups) carry rescale, window, pixel
spacing and orientation per frame inside functional group macros instead of at the top level,
where pydicom's LUT functions look for them. :func:`frame_view` flattens them into one small data
set per frame so those functions (and ours) read one place whatever the IOD.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.tag import Tag

#: Functional group macros whose single item holds attributes the pixel pipeline needs:
#: Pixel Measures (C.7.6.16.2.1), Plane Position (C.7.6.16.2.3), Plane Orientation (C.7.6.16.2.4),
#: Pixel Value Transformation (C.7.6.16.2.9) and Frame VOI LUT (with LUT) (C.7.6.16.2.10).
FUNCTIONAL_GROUP_MACROS = (
    "PixelMeasuresSequence",
    "PlanePositionSequence",
    "PlaneOrientationSequence",
    "PixelValueTransformationSequence",
    "FrameVOILUTSequence",
)

#: Attributes outside group 0028 that the pipeline reads, by keyword.
_EXTRA_KEYWORDS = (
    "Modality",
    "PatientOrientation",  # (0020,0020), C.7.6.1.1.1
    "ImagePositionPatient",
    "ImageOrientationPatient",  # (0020,0037), C.7.6.2.1.1
    "SliceThickness",
    "SliceLocation",
    "ImagerPixelSpacing",  # (0018,1164)
    "NominalScannedPixelSpacing",  # (0018,2010)
    "PresentationLUTShape",  # (2050,0020)
    "PresentationLUTSequence",  # (2050,0010)
)


def number_of_frames(ds: Dataset) -> int:
    """Number of Frames (0028,0008) (C.7.6.6), 1 when absent, empty or not a positive number."""
    value = ds.get("NumberOfFrames")
    try:
        count = int(value) if value not in (None, "") else 1
    except (TypeError, ValueError):
        return 1
    return max(count, 1)


def is_enhanced(ds: Dataset) -> bool:
    """True when the data set has Multi-frame Functional Groups (C.7.6.16)."""
    return "SharedFunctionalGroupsSequence" in ds or "PerFrameFunctionalGroupsSequence" in ds


def frame_view(ds: Dataset, index: int = 0) -> Dataset:
    """The attributes that describe frame ``index`` (0-based), as one flat data set.

    Starts from the top-level Image Pixel, Modality LUT, VOI LUT and geometry attributes, then
    overlays the items of the Shared Functional Groups Sequence (5200,9229) and finally those of
    item ``index`` of the Per-frame Functional Groups Sequence (5200,9230): PS3.3 C.7.6.16.1.1 says
    a macro appears in one or the other, and where both would apply the per-frame value governs.

    The view shares element objects with ``ds`` (nothing is copied) and keeps its transfer
    syntax and encoding, so pydicom can read OW LUT data of the correct endianness.

    Args:
        ds: The full data set.
        index: 0-based frame number.
    """
    view = ds.group_dataset(0x0028)
    for keyword in _EXTRA_KEYWORDS:
        tag = Tag(keyword)
        if tag in ds:
            view.add(ds[tag])
    if is_enhanced(ds):
        for groups in _functional_groups(ds, index):
            for keyword in FUNCTIONAL_GROUP_MACROS:
                seq = groups.get(keyword)
                if seq:
                    for elem in seq[0]:
                        view.add(elem)
    if hasattr(ds, "file_meta"):
        view.file_meta = ds.file_meta
    encoding = getattr(ds, "original_encoding", (None, None))
    if encoding != (None, None):
        view.set_original_encoding(*encoding)
    return view


def _functional_groups(ds: Dataset, index: int) -> list[Dataset]:
    """The shared item, then this frame's per-frame item (whichever exist)."""
    found = []
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        found.append(shared[0])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and 0 <= index < len(per_frame):
        found.append(per_frame[index])
    return found
