"""Small images for pixel tests: pydicom's bundled files, and data sets built from scratch."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def bundled(name: str) -> Path:
    """Path of a file shipped inside pydicom (no download)."""
    path = get_testdata_file(name)
    assert path is not None, f"pydicom does not ship {name}"
    return Path(path)


def read(name: str) -> Dataset:
    """A bundled file, read (pydicom's warnings about its odd test files silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(bundled(name))


def grayscale(
    pixels: np.ndarray,
    *,
    bits_stored: int | None = None,
    photometric: str = "MONOCHROME2",
    modality: str = "OT",
    **attributes: object,
) -> Dataset:
    """A single- or multi-frame grayscale data set holding ``pixels`` as stored values.

    The dtype of ``pixels`` fixes Bits Allocated and Pixel Representation; keyword arguments
    become attributes (``WindowCenter=40``).
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "TEST^PIXELS"
    ds.PatientID = "PIX1"
    ds.Modality = modality
    frames = pixels.shape[0] if pixels.ndim == 3 else 1
    ds.Rows, ds.Columns = pixels.shape[-2:]
    if pixels.ndim == 3:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.PixelData = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder("<"))).tobytes()
    ds["PixelData"].VR = "OW" if ds.BitsAllocated > 8 else "OB"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.set_original_encoding(False, True)
    return ds


def save(ds: Dataset, path: Path) -> Path:
    """Write ``ds`` as a DICOM file (PS3.10) and return the path."""
    ds.save_as(path, enforce_file_format=True)
    return path


def linear(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 (LINEAR) onto 0..255, written out independently of the code under test."""
    x = np.asarray(x, dtype=np.float64)
    y = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255
    y = np.where(x <= center - 0.5 - (width - 1) / 2, 0, y)
    y = np.where(x > center - 0.5 + (width - 1) / 2, 255, y)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def linear_exact(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.3.2 (LINEAR_EXACT) onto 0..255."""
    x = np.asarray(x, dtype=np.float64)
    y = ((x - center) / width + 0.5) * 255
    y = np.where(x <= center - width / 2, 0, y)
    y = np.where(x > center + width / 2, 255, y)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def sigmoid(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.3.1 (SIGMOID) onto 0..255."""
    x = np.asarray(x, dtype=np.float64)
    y = 255 / (1 + np.exp(-4 * (x - center) / width))
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def raw_le(ds: Dataset, dtype: str) -> np.ndarray:
    """Native little-endian Pixel Data as a flat array, read straight from the bytes."""
    return np.frombuffer(ds.PixelData, dtype=np.dtype(dtype).newbyteorder("<"))
