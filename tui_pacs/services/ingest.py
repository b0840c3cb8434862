"""Take instances in (from the network or from files) and archive them durably.

The archived file is a File Meta Information header we write followed by the data set bytes
exactly as received: no decoding, no re-encoding, transfer syntax unchanged.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import peewee as pw
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tui_pacs import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from tui_pacs.config import Config
from tui_pacs.errors import DatasetError
from tui_pacs.model import StoreResult
from tui_pacs.net.scp import StoreRequest
from tui_pacs.store.archive import Archive, validate_uid
from tui_pacs.store.db import use_database
from tui_pacs.store.header import (
    dataset_offset,
    parse_dataset,
    record_from_dataset,
    scan_dataset,
)
from tui_pacs.store.index import Index, IndexWriter, PendingInstance
from tui_pacs.store.models import utcnow

log = logging.getLogger(__name__)

MEDIA_STORAGE_DIRECTORY_STORAGE = "1.2.840.10008.1.3.10"
PREAMBLE = b"\0" * 128 + b"DICM"


def _meta_element(element: int, vr: bytes, value: bytes) -> bytes:
    """One group 0x0002 element, explicit VR little endian with a 2-byte length (PS3.5 7.1.2)."""
    length = len(value).to_bytes(2, "little")
    return b"\x02\x00" + element.to_bytes(2, "little") + vr + length + value


def _uid_value(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw  # UI pads with NUL to an even length


_META_VERSION = b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01"
_META_IMPLEMENTATION = _meta_element(0x0012, b"UI", _uid_value(IMPLEMENTATION_CLASS_UID)) + (
    _meta_element(
        0x0013,
        b"SH",
        IMPLEMENTATION_VERSION_NAME.encode("ascii")
        + (b" " if len(IMPLEMENTATION_VERSION_NAME) % 2 else b""),
    )
)


def file_header(sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str) -> bytes:
    """Preamble, prefix and File Meta Information (PS3.10 7.1) for an archived instance.

    No Source AE Title is written, so the same data set always gives the same file (and
    checksum) whoever sent it. Encoded by hand, byte for byte what pydicom's
    ``write_file_meta_info`` writes, at a hundredth of its cost (it ran once per instance).
    The UIDs must already be validated (ASCII digits and dots).
    """
    body = b"".join(
        (
            _META_VERSION,
            _meta_element(0x0002, b"UI", _uid_value(sop_class_uid)),
            _meta_element(0x0003, b"UI", _uid_value(sop_instance_uid)),
            _meta_element(0x0010, b"UI", _uid_value(transfer_syntax_uid)),
            _META_IMPLEMENTATION,
        )
    )
    group_length = b"\x02\x00\x00\x00UL\x04\x00" + len(body).to_bytes(4, "little")
    return PREAMBLE + group_length + body


class Ingestor:
    """Archives instances: writes the file, indexes it, returns once both are durable.

    Args:
        config: Storage folder, database URL and duplicate policy come from here.
        db: An already open database (tests, the console); opened from the config otherwise.
    """

    def __init__(self, config: Config, db: pw.Database | None = None) -> None:
        self.config = config
        self.db = db or use_database(config.effective_database_url)
        self.archive = Archive(config.storage_path)
        self.archive.cleanup_incoming(is_indexed=_is_indexed)
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
        # The quick scan settles the usual case; anything unusual gets pydicom's full parse.
        ds = scan_dataset(raw, transfer_syntax)
        if ds is None:
            ds = parse_dataset(header + raw, skip_large_values=True)
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
        pending = PendingInstance(record, temp, transfer_syntax, calling_ae_title)
        result = self.writer.submit(pending)
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


def _is_indexed(sop_instance_uid: str, relative_path: str) -> bool:
    """Whether the index holds this instance at this archive path (crash clean-up asks)."""
    from tui_pacs.store.models import Instance

    row = Instance.get_or_none(Instance.sop_instance_uid == sop_instance_uid)
    return row is not None and row.path == relative_path
