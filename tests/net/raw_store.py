"""C-STORE files exactly as they are on disk with pynetdicom: no decoding, no re-encoding.

The request's Affected SOP Class/Instance UIDs and the presentation context's transfer syntax come
from each file's File Meta Information; the data set bytes after it go out untouched. That is how
the tests send data sets built to be wrong (truncated, garbage, hostile UIDs) to the node.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_file_meta_info
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID
from pynetdicom import AE, _config

#: Large enough that one bad request cannot stall a test, small enough to notice a hang.
TIMEOUT = 30


@contextmanager
def raw_sending(validate_uids: bool = True) -> Iterator[None]:
    """Send file paths without decoding them; optionally let invalid UIDs go out as they are.

    pynetdicom's documented switches (``_config`` is its configuration module) are set for the
    duration and restored afterwards.
    """
    chunked = _config.STORE_SEND_CHUNKED_DATASET
    validators = dict(_config.VALIDATORS)
    _config.STORE_SEND_CHUNKED_DATASET = True
    if not validate_uids:
        _config.VALIDATORS["UI"] = lambda value: (True, "")
    try:
        yield
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
        _config.VALIDATORS.clear()
        _config.VALIDATORS.update(validators)


def write_raw_file(
    path: Path,
    dataset_bytes: bytes,
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax_uid: str,
) -> Path:
    """Write a Part 10 file: valid File Meta Information followed by ``dataset_bytes`` verbatim."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = transfer_syntax_uid
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    buf = DicomBytesIO()
    buf.is_little_endian = True
    buf.is_implicit_VR = False
    write_file_meta_info(buf, meta, enforce_standard=True)
    path.write_bytes(b"\0" * 128 + b"DICM" + buf.getvalue() + dataset_bytes)
    return path


def encode_dataset(ds: Dataset, implicit_vr: bool = False) -> bytes:
    """Encode a data set (little endian) the way it would travel in a P-DATA PDU."""
    from pydicom.filewriter import write_dataset

    buf = DicomBytesIO()
    buf.is_little_endian = True
    buf.is_implicit_VR = implicit_vr
    write_dataset(buf, ds)
    return buf.getvalue()


def send_raw(
    port: int,
    files: Sequence[Path],
    *,
    called_ae: str = "TUI_PACS",
    calling_ae: str = "RAWSCU",
    validate_uids: bool = True,
) -> list[int | None]:
    """C-STORE ``files`` over one association; the status of each (None: no response).

    Raises:
        ConnectionError: The association was not established.
    """
    metas = [read_file_meta_info(f) for f in files]
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    contexts = sorted({(str(m.MediaStorageSOPClassUID), str(m.TransferSyntaxUID)) for m in metas})
    with raw_sending(validate_uids):
        for sop_class, ts in contexts:
            ae.add_requested_context(sop_class, ts)
        assoc = ae.associate("127.0.0.1", port, ae_title=called_ae)
        if not assoc.is_established:
            raise ConnectionError(f"no association with {called_ae}@127.0.0.1:{port}")
        statuses: list[int | None] = []
        try:
            for path in files:
                if not assoc.is_established:
                    statuses.append(None)
                    continue
                rsp = assoc.send_c_store(path)
                statuses.append(int(rsp.Status) if rsp and "Status" in rsp else None)
        finally:
            if assoc.is_established:
                assoc.release()
    return statuses
