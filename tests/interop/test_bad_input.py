"""Bad C-STORE requests over the network: a failure status, nothing written, the node keeps serving.

pynetdicom is the SCU here because only it can put arbitrary bytes and invalid UIDs on the wire:
each case is a Part 10 file whose data set bytes (and request UIDs, taken from its File Meta
Information) are built to be wrong, sent without decoding, followed on the same association by a
good instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from tests.interop.synth import make_ct, new_uid
from tests.net.archive_audit import indexed_instances, temp_files
from tests.net.raw_store import encode_dataset, send_raw, write_raw_file
from tests.peers import NodeProcess
from tui_pacs.net import status as st

# Building the bad data sets makes pydicom warn about the very values under test.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom.valuerep")

LONG_UID = "1.2." + "3" * 62  # 66 characters
HOSTILE_UID = "../../x"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One node for every bad request of this module (each case checks what it changed)."""
    proc = NodeProcess(tmp_path_factory.mktemp("bad-input") / "node").start()
    yield proc
    assert proc.stop() == 0, proc.log()[-3000:]


@dataclass(frozen=True)
class Case:
    """A bad request: its data set bytes, the request's SOP Instance UID, the statuses allowed."""

    dataset: bytes
    request_uid: str
    expected: int


def _good(sop_uid: str, study_uid: str | None = None, series_uid: str | None = None) -> bytes:
    return encode_dataset(make_ct(study_uid or new_uid(), series_uid or new_uid(), sop_uid))


def _patched_length(data: bytes, header: bytes, offset: int, width: int, delta: int) -> bytes:
    """``data`` with the length field of the element starting with ``header`` changed by delta."""
    b = bytearray(data)
    i = b.find(header)
    assert i >= 0, header
    length = int.from_bytes(b[i + offset : i + offset + width], "little")
    b[i + offset : i + offset + width] = (length + delta).to_bytes(width, "little")
    return bytes(b)


def _truncated_pixels(uid: str) -> Case:
    data = _good(uid)
    return Case(data[:-100], uid, st.ERROR_CANNOT_UNDERSTAND)


def _truncated_header(uid: str) -> Case:
    data = _good(uid)
    return Case(data[:301], uid, st.ERROR_CANNOT_UNDERSTAND)


def _garbage(uid: str) -> Case:
    return Case(bytes(range(256)) * 16, uid, st.ERROR_CANNOT_UNDERSTAND)


def _empty(uid: str) -> Case:
    return Case(b"", uid, st.ERROR_CANNOT_UNDERSTAND)


def _name_length_too_long(uid: str) -> Case:
    # (0010,0010) PN with a 2-byte length: every element after it is read misaligned.
    data = _patched_length(_good(uid), b"\x10\x00\x10\x00PN", 6, 2, 7)
    return Case(data, uid, st.ERROR_CANNOT_UNDERSTAND)


def _pixel_length_too_long(uid: str) -> Case:
    # (7FE0,0010) OW: 2 reserved bytes, then a 4-byte length.
    data = _patched_length(_good(uid), b"\xe0\x7f\x10\x00OW", 8, 4, 1000)
    return Case(data, uid, st.ERROR_CANNOT_UNDERSTAND)


def _pixel_length_too_short(uid: str) -> Case:
    data = _patched_length(_good(uid), b"\xe0\x7f\x10\x00OW", 8, 4, -1000)
    return Case(data, uid, st.ERROR_CANNOT_UNDERSTAND)


def _missing_sop_instance_uid(uid: str) -> Case:
    ds = make_ct(new_uid(), new_uid(), uid)
    del ds.SOPInstanceUID
    return Case(encode_dataset(ds), uid, st.ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS)


def _hostile_sop_uid_in_dataset(uid: str) -> Case:
    return Case(_good(HOSTILE_UID), uid, st.ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS)


def _hostile_study_uid(uid: str) -> Case:
    return Case(_good(uid, study_uid=HOSTILE_UID), uid, st.ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS)


def _hostile_series_uid(uid: str) -> Case:
    return Case(
        _good(uid, series_uid="../../../etc"), uid, st.ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    )


def _long_uid_in_dataset(uid: str) -> Case:
    return Case(_good(LONG_UID), uid, st.ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS)


def _hostile_uid_in_request(uid: str) -> Case:
    return Case(_good(uid), HOSTILE_UID, st.ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS)


def _hostile_uid_in_request_and_dataset(uid: str) -> Case:
    return Case(_good(HOSTILE_UID), HOSTILE_UID, st.ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS)


def _long_uid_in_request_and_dataset(uid: str) -> Case:
    return Case(_good(LONG_UID), LONG_UID, st.ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS)


def _uid_differs_from_request(uid: str) -> Case:
    return Case(_good(new_uid()), uid, st.ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS)


CASES: dict[str, Callable[[str], Case]] = {
    "truncated-pixel-data": _truncated_pixels,
    "truncated-inside-header": _truncated_header,
    "garbage-bytes": _garbage,
    "empty-data-set": _empty,
    "element-length-too-long": _name_length_too_long,
    "pixel-length-too-long": _pixel_length_too_long,
    "pixel-length-too-short": _pixel_length_too_short,
    "missing-sop-instance-uid": _missing_sop_instance_uid,
    "hostile-sop-uid-in-data-set": _hostile_sop_uid_in_dataset,
    "hostile-study-uid": _hostile_study_uid,
    "hostile-series-uid": _hostile_series_uid,
    "65+-char-uid-in-data-set": _long_uid_in_dataset,
    "hostile-uid-in-request": _hostile_uid_in_request,
    "hostile-uid-in-request-and-data-set": _hostile_uid_in_request_and_dataset,
    "65+-char-uid-in-request-and-data-set": _long_uid_in_request_and_dataset,
    "data-set-uid-differs-from-request": _uid_differs_from_request,
}

#: Files the node itself changes on every store; anything else new must be the good instance.
_NODE_OWN = (".sqlite3", ".sqlite3-wal", ".sqlite3-shm", ".log", ".stderr")


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and not p.name.endswith(_NODE_OWN)}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_store_fails_writes_nothing_and_node_keeps_serving(
    node: NodeProcess, tmp_path: Path, name: str
) -> None:
    """A bad request gets its failure status, leaves no file/temp file/row; a good one follows."""
    uid = new_uid()
    case = CASES[name](uid)
    bad = write_raw_file(
        tmp_path / "bad.dcm",
        case.dataset,
        sop_class_uid=CTImageStorage,
        sop_instance_uid=case.request_uid,
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    good_uid = new_uid()
    good = write_raw_file(
        tmp_path / "good.dcm",
        _good(good_uid),
        sop_class_uid=CTImageStorage,
        sop_instance_uid=good_uid,
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    url = f"sqlite:///{node.folder / 'index.sqlite3'}"
    # Everything under the node's parent folder: a hostile UID must not escape the archive either.
    watched = node.folder.parent
    before_files = _files(watched)
    before_rows = set(indexed_instances(url)) if (node.folder / "index.sqlite3").exists() else set()

    statuses = send_raw(node.port, [bad, good], validate_uids=False)

    assert statuses == [case.expected, st.SUCCESS], [st.describe(s) for s in statuses]
    rows = indexed_instances(url)
    assert set(rows) - before_rows == {good_uid}
    new_files = _files(watched) - before_files
    assert new_files == {node.archive / rows[good_uid].path}
    assert temp_files(node.archive) == []
    assert "unexpected failure" not in node.log()
