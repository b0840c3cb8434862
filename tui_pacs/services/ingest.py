"""Take instances in (from the network or from files) and archive them durably.

The archived file is a File Meta Information header we write followed by the data set bytes
exactly as received: no decoding, no re-encoding, transfer syntax unchanged.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import peewee as pw
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tui_pacs import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from tui_pacs.config import Config
from tui_pacs.errors import DatasetError
from tui_pacs.model import StoreResult
from tui_pacs.net.scp import StoreRequest
from tui_pacs.store.archive import Archive, validate_uid
from tui_pacs.store.db import open_database
from tui_pacs.store.header import dataset_offset, parse_dataset, record_from_dataset
from tui_pacs.store.index import Index, IndexWriter, PendingInstance
from tui_pacs.store.models import utcnow

log = logging.getLogger(__name__)

MEDIA_STORAGE_DIRECTORY_STORAGE = "1.2.840.10008.1.3.10"
PREAMBLE = b"\0" * 128 + b"DICM"


def file_header(sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str) -> bytes:
    """Preamble, prefix and File Meta Information (PS3.10 7.1) for an archived instance.

    No Source AE Title is written, so the same data set always gives the same file (and
    checksum) whoever sent it.
    """
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = transfer_syntax_uid
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    buf = DicomBytesIO()
    buf.is_little_endian = True
    buf.is_implicit_VR = False
    write_file_meta_info(buf, meta, enforce_standard=True)
    return PREAMBLE + buf.getvalue()


class Ingestor:
    """Archives instances: writes the file, indexes it, returns once both are durable.

    Args:
        config: Storage folder, database URL and duplicate policy come from here.
        db: An already open database (tests, the console); opened from the config otherwise.
    """

    def __init__(self, config: Config, db: pw.Database | None = None) -> None:
        self.config = config
        self.db = db or open_database(config.effective_database_url)
        self.archive = Archive(config.storage_path)
        self.archive.cleanup_incoming()
        self.index = Index(self.db, self.archive, config.duplicate_policy)
        self.writer = IndexWriter(self.index)
        self.last_received: datetime | None = None

    def store_request(self, request: StoreRequest) -> StoreResult:
        """Archive one C-STORE request (the listener's ``store`` callable)."""
        sop_class = validate_uid(request.sop_class_uid, "Affected SOP Class UID")
        sop_instance = validate_uid(request.sop_instance_uid, "Affected SOP Instance UID")
        transfer_syntax = validate_uid(request.transfer_syntax_uid, "Transfer Syntax UID")
        header = file_header(sop_class, sop_instance, transfer_syntax)
        raw = request.dataset
        ds = parse_dataset(header + raw)
        record = record_from_dataset(ds, sop_class, sop_instance)
        temp = self.archive.write_temp([header, raw])
        result = self.writer.submit(
            PendingInstance(record, temp, transfer_syntax, request.calling_ae_title)
        )
        self.last_received = utcnow()
        return result

    def store_bytes(self, blob: bytes, calling_ae_title: str = "") -> StoreResult:
        """Archive one DICOM file held in memory (with or without File Meta Information).

        Raises:
            DatasetError: Not DICOM, truncated, a media directory, or missing its UIDs.
            StoreError: The archive or the index could not take it.
        """
        offset, transfer_syntax = dataset_offset(blob)
        try:
            ds = parse_dataset(blob, force=True)
            # Checked before the UIDs: a media directory has none, and "Study Instance UID is
            # empty" would hide what the file is.
            if _is_media_directory(ds):
                raise DatasetError("a DICOMDIR (media directory), not an image")
            record = record_from_dataset(ds)
        except DatasetError as exc:
            if offset == 0 and not _looks_like_dicom(blob):
                raise DatasetError("not a DICOM file") from exc
            raise
        if not transfer_syntax:
            implicit, little = ds.original_encoding
            if implicit:
                transfer_syntax = str(ImplicitVRLittleEndian)
            elif little:
                transfer_syntax = str(ExplicitVRLittleEndian)
            else:
                transfer_syntax = str(ExplicitVRBigEndian)
        transfer_syntax = validate_uid(transfer_syntax, "Transfer Syntax UID")
        header = file_header(record.sop_class_uid, record.sop_instance_uid, transfer_syntax)
        temp = self.archive.write_temp([header, memoryview(blob)[offset:]])
        result = self.writer.submit(PendingInstance(record, temp, transfer_syntax, calling_ae_title))
        self.last_received = utcnow()
        return result

    def store_file(self, path: Path, calling_ae_title: str = "") -> StoreResult:
        """Archive one DICOM file from disk (see :meth:`store_bytes`)."""
        try:
            blob = Path(path).read_bytes()
        except OSError as exc:
            raise DatasetError(f"cannot read: {exc.strerror or exc}") from exc
        return self.store_bytes(blob, calling_ae_title)

    def close(self) -> None:
        """Finish pending index writes and release the archive."""
        self.writer.close()
        self.archive.close()


def _is_media_directory(ds: Dataset) -> bool:
    """A DICOMDIR: Media Storage Directory SOP class in the meta header or directory records."""
    meta = getattr(ds, "file_meta", None)
    declared = meta.get("MediaStorageSOPClassUID") if meta is not None else None
    return (
        declared == MEDIA_STORAGE_DIRECTORY_STORAGE
        or ds.get("SOPClassUID") == MEDIA_STORAGE_DIRECTORY_STORAGE
        or "DirectoryRecordSequence" in ds
    )


def _looks_like_dicom(blob: bytes) -> bool:
    """A data set without a preamble normally opens with a group 0x0008 element (either endian)."""
    head = bytes(blob[:4])
    return head[:2] in (b"\x08\x00", b"\x00\x08") and len(blob) > 8
