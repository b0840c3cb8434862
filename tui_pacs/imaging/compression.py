"""Transfer syntaxes: which decode here, and whether an image has been lossy compressed."""

from __future__ import annotations

import contextlib

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSNearLossless,
)

#: Transfer syntaxes whose encoding is always lossy (PS3.5 A.4): JPEG processes 1, 2 and 4,
#: and the retired lossy JPEG processes.
ALWAYS_LOSSY = frozenset(
    {
        JPEGBaseline8Bit,
        JPEGExtended12Bit,
        *(UID(f"1.2.840.10008.1.2.4.{n}") for n in (52, 53, 54, 55, 56, 59, 60, 61, 62, 63, 64)),
    }
)

#: Transfer syntaxes that may carry lossy data (PS3.5 A.4): JPEG-LS near-lossless, JPEG 2000 and
#: HTJ2K "lossy or lossless", and the video ones (MPEG-2/4, HEVC).
MAY_BE_LOSSY = frozenset({JPEGLSNearLossless, JPEG2000, HTJ2K})
_VIDEO_PREFIXES = ("1.2.840.10008.1.2.4.10", "1.2.840.10008.1.2.4.11")


def transfer_syntax(ds: Dataset) -> UID | None:
    """The data set's transfer syntax, from its File Meta or from how it was read."""
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    return UID(str(uid)) if uid else None


def is_lossy(ds: Dataset) -> bool:
    """True when the image has been lossy compressed at some point.

    PS3.3 C.7.6.1.1.5: Lossy Image Compression (0028,2110) ``01`` means the image has been lossy
    compressed (once set it is never reset, even after decompression). Without that attribute,
    a transfer syntax that can only be lossy, or may be lossy, flags the image: a viewer must
    not show an image as diagnostic quality on a guess. ``00`` is trusted except under an
    always-lossy transfer syntax.
    """
    flag = str(ds.get("LossyImageCompression", "") or "").strip()
    ts = transfer_syntax(ds)
    if flag == "01":
        return True
    if ts is not None and (ts in ALWAYS_LOSSY or str(ts).startswith(_VIDEO_PREFIXES)):
        return True
    if flag == "00":
        return False
    return ts is not None and ts in MAY_BE_LOSSY


def lossy_description(ds: Dataset) -> str:
    """``LOSSY 10:1 ISO_10918_1`` when lossy (ratio and method from C.7.6.1.1.5), else empty."""
    if not is_lossy(ds):
        return ""
    parts = ["LOSSY"]
    ratios = ds.get("LossyImageCompressionRatio")
    if ratios not in (None, ""):
        values = list(ratios) if isinstance(ratios, MultiValue | list | tuple) else [ratios]
        with contextlib.suppress(TypeError, ValueError, IndexError):
            parts.append(f"{float(values[-1]):g}:1")
    methods = ds.get("LossyImageCompressionMethod")
    if methods not in (None, ""):
        values = list(methods) if isinstance(methods, MultiValue | list | tuple) else [methods]
        if values:
            parts.append(str(values[-1]))
    return " ".join(parts)
