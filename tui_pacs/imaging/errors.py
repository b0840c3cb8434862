"""Errors of the pixel pipeline: each says what cannot be shown and why, never a traceback."""

from __future__ import annotations

from tui_pacs.errors import PacsError


class ImagingError(PacsError):
    """An image cannot be rendered."""

    title = "Cannot display image"


class NoPixelDataError(ImagingError):
    """The instance holds no image: no (7FE0,0010) Pixel Data (a report, a waveform, a plan...)."""

    title = "No image"


class MissingCodecError(ImagingError):
    """The transfer syntax is known but no installed plugin decodes it (PS3.5 Section 10)."""

    title = "Missing decoder"


class UnsupportedTransferSyntaxError(ImagingError):
    """No decoder exists for the transfer syntax at all (e.g. video, JPEG XL on this version)."""

    title = "Unsupported transfer syntax"


class PixelDataError(ImagingError):
    """The pixel data or the attributes that describe it are broken or inconsistent."""

    title = "Broken image"


class WaveformError(ImagingError):
    """The instance holds no decodable waveform (PS3.3 C.10.9)."""

    title = "Cannot display waveform"


class UnreadableFileError(ImagingError):
    """The file is not a DICOM file pydicom can parse (PS3.10)."""

    title = "Cannot read file"
