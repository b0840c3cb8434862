"""Reading data sets and decoding one frame of pixel data with ``pydicom.pixels``.

Decoding is pydicom's (``get_decoder(...).as_array``, the same call ``pixel_array`` makes); this
module only picks the frame, keeps the photometric interpretation the codec actually produced,
and turns every failure into an :class:`~tui_pacs.imaging.errors.ImagingError` with a message
a technician can act on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import as_pixel_options, get_decoder
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tui_pacs.imaging.compression import transfer_syntax
from tui_pacs.imaging.errors import (
    ImagingError,
    MissingCodecError,
    NoPixelDataError,
    PixelDataError,
    UnreadableFileError,
    UnsupportedTransferSyntaxError,
)
from tui_pacs.imaging.frames import frame_view, number_of_frames

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True, slots=True, eq=False)
class DecodedFrame:
    """One decoded frame, before any LUT.

    Attributes:
        pixels: Stored values (rows, columns) or samples (rows, columns, samples) as the codec
            produced them: bits above Bits Stored cleared, signed data sign-extended,
            YBR_FULL_422 upsampled, planes interleaved (C.7.6.3.1.3), but no colour conversion.
        photometric_interpretation: The colour space of ``pixels`` (a JPEG decoder may already
            have converted YBR to RGB, so this can differ from the data set's value).
        view: The frame's attributes (:func:`~tui_pacs.imaging.frames.frame_view`).
        index: 0-based frame number.
        number_of_frames: Frames in the instance.
    """

    pixels: np.ndarray
    photometric_interpretation: str
    view: Dataset
    index: int
    number_of_frames: int

    @property
    def nbytes(self) -> int:
        """Memory the decoded pixels take (for cache accounting)."""
        return int(self.pixels.nbytes)


def read_dataset(path: str | os.PathLike[str], *, stop_before_pixels: bool = False) -> Dataset:
    """Read a DICOM file (PS3.10), forcing past a missing preamble the way storescp files lack one.

    Raises:
        UnreadableFileError: The file does not exist or is not DICOM.
    """
    p = Path(path)
    try:
        return dcmread(p, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        pass
    except FileNotFoundError:
        raise UnreadableFileError(f"{p}: no such file") from None
    except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise UnreadableFileError(f"{p}: {exc}") from None
    try:
        ds = dcmread(p, force=True, stop_before_pixels=stop_before_pixels)
    except Exception as exc:  # pydicom raises many types on garbage input
        raise UnreadableFileError(f"{p} is not a DICOM file ({exc})") from None
    if len(ds) == 0 or ("SOPClassUID" not in ds and "PixelData" not in ds):
        raise UnreadableFileError(f"{p} is not a DICOM file")
    return ds


def has_pixel_data(ds: Dataset) -> bool:
    """True when the data set holds (7FE0,0010/0008/0009) pixel data."""
    return any(k in ds for k in _PIXEL_KEYWORDS)


def _syntax(ds: Dataset) -> UID:
    ts = transfer_syntax(ds)
    if ts is not None:
        return ts
    # A data set without File Meta (e.g. built in memory, or a bare file read with force=True):
    # its transfer syntax is the encoding it was read with.
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        implicit, little = ds.is_implicit_VR, ds.is_little_endian
    if little is False:
        return ExplicitVRBigEndian
    return ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def decode_frame(ds: Dataset, index: int = 0) -> DecodedFrame:
    """Decode frame ``index`` (0-based) of ``ds`` with pydicom's decoder for its transfer syntax.

    PS3.3 C.7.6.3 (Image Pixel Module) describes the layout pydicom decodes; PS3.5 A.4 the
    encapsulated transfer syntaxes (JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE), whose plugins
    (pylibjpeg-libjpeg, -openjpeg, -rle, Pillow) pydicom finds by name.

    Raises:
        NoPixelDataError: The instance holds no image.
        UnsupportedTransferSyntaxError: pydicom has no decoder for the transfer syntax.
        MissingCodecError: A decoder exists but none of its plugins is installed.
        PixelDataError: The frame does not exist or the pixel data cannot be decoded.
    """
    if not has_pixel_data(ds):
        raise NoPixelDataError("this instance holds no image (no Pixel Data)")
    frames = number_of_frames(ds)
    if not 0 <= index < frames:
        raise ImagingError(
            f"frame {index + 1} does not exist (the image has {frames})", "No such frame"
        )
    ts = _syntax(ds)
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise UnsupportedTransferSyntaxError(
            f"no decoder for transfer syntax {ts.name} ({ts})"
        ) from None
    if not decoder.is_available:
        options = [d.split(" - requires ", 1)[-1] for d in decoder.missing_dependencies]
        raise MissingCodecError(
            f"cannot decode {ts.name}: no decoding plugin is installed; install one of: "
            + (" | ".join(options) or "a pydicom decoding plugin")
        )
    try:
        opts = as_pixel_options(ds)
        arr, meta = decoder.as_array(ds, index=index, validate=True, raw=True, **opts)
    except (AttributeError, KeyError) as exc:
        raise PixelDataError(f"the image attributes are incomplete: {exc}") from None
    except Exception as exc:  # codecs raise anything from ValueError to RuntimeError
        raise PixelDataError(f"cannot decode frame {index + 1} ({ts.name}): {exc}") from None
    photometric = str(
        meta.get("photometric_interpretation") or ds.get("PhotometricInterpretation", "")
    ).strip()
    return DecodedFrame(arr, photometric, frame_view(ds, index), index, frames)
