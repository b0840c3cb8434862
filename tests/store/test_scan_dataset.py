"""The C-STORE fast path (scan_dataset, hand-encoded file meta) agrees with pydicom's full parse."""

from __future__ import annotations

import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info

from tests.peers import pydicom_test_files
from tui_pacs import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from tui_pacs.errors import PacsError
from tui_pacs.services.ingest import PREAMBLE, file_header
from tui_pacs.store.header import (
    dataset_offset,
    parse_dataset,
    record_from_dataset,
    scan_dataset,
)


def _cases() -> list[tuple[str, bytes, str]]:
    cases = []
    for path in pydicom_test_files():
        blob = path.read_bytes()
        offset, ts = dataset_offset(blob)
        if offset and ts:
            cases.append((path.name, blob[offset:], ts))
    return cases


CASES = _cases()


@pytest.mark.parametrize("name,raw,ts", CASES, ids=[c[0] for c in CASES])
def test_scan_accepts_only_what_the_full_parse_accepts(name: str, raw: bytes, ts: str) -> None:
    """Whole files and cuts: scan_dataset gives the same index record or defers (None)."""
    header = file_header("1.2.3", "1.2.3.4", ts)
    cuts = sorted({len(raw), *range(7, len(raw), max(1, len(raw) // 23))})
    for cut in cuts:
        data = raw[:cut]
        scanned = scan_dataset(data, ts)
        if scanned is None:
            continue
        full = parse_dataset(header + data)  # must not raise: scan never accepts more
        try:
            expected = record_from_dataset(full)
        except PacsError:
            with pytest.raises(PacsError):
                record_from_dataset(scanned)
            continue
        assert record_from_dataset(scanned) == expected, (name, cut)


@pytest.mark.parametrize(
    "ts", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.90"]
)
def test_file_header_is_byte_identical_to_pydicom(ts: str) -> None:
    """The hand-encoded File Meta Information equals pydicom's write_file_meta_info output."""
    sop_class, sop_uid = "1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.8.498.12345"
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    buf = DicomBytesIO()
    buf.is_little_endian = True
    buf.is_implicit_VR = False
    write_file_meta_info(buf, meta, enforce_standard=True)
    assert file_header(sop_class, sop_uid, ts) == PREAMBLE + buf.getvalue()
