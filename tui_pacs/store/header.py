"""Extract the index attributes of an instance from its (header-only) pydicom data set."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from tui_pacs.errors import DatasetError, DatasetMismatchError
from tui_pacs.model import InstanceRecord
from tui_pacs.store.archive import validate_uid


def norm_text(value: str) -> str:
    """Case-folded form used for matching names and descriptions without regard to case."""
    return value.casefold()


#: VRs of the default repertoire (PS3.5 6.1.2.3) that pydicom decodes as Latin-1 whatever the
#: character set and hands back as the text itself (no number or name parsing): their index
#: text is taken straight from the bytes, which costs a tenth of a pydicom conversion.
_PLAIN_TEXT_VRS = frozenset({"UI", "CS", "DA", "TM", "AS"})


@functools.cache
def _plain_text_tag(keyword: str) -> tuple[int, str] | None:
    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    vr = dictionary_VR(tag)
    return (tag, vr) if vr in _PLAIN_TEXT_VRS else None


def _plain_text(ds: Dataset, keyword: str) -> str | None:
    """The text of a not yet converted plain-text element, or None to let pydicom convert it."""
    plain = _plain_text_tag(keyword)
    if plain is None:
        return None
    elem = ds.get_item(plain[0], keep_deferred=True)
    if elem is None:
        return ""
    if not isinstance(elem, RawDataElement) or elem.value is None:
        return None
    if elem.VR not in (None, plain[1]):  # e.g. sent as UN: pydicom knows best
        return None
    return bytes(elem.value).decode("latin-1")


def _text(ds: Dataset, keyword: str, limit: int = 324) -> str:
    plain = _plain_text(ds, keyword)
    if plain is not None:
        return plain.replace("\0", "").strip()[:limit]
    try:
        value: Any = ds.get(keyword)
    except Exception:  # a malformed value must not stop indexing the rest
        return ""
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    text = str(value).replace("\0", "").strip()
    return text[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
            value = value[0]
        number = int(float(value))
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    except Exception:
        return None
    return number if -(2**31) <= number < 2**31 else None


def _date(ds: Dataset, keyword: str) -> str:
    text = _text(ds, keyword, 32).replace(".", "")  # ACR-NEMA style 2001.01.31
    return text[:8] if text[:8].isdigit() and len(text) >= 8 else ""


def _time(ds: Dataset, keyword: str) -> str:
    text = _text(ds, keyword, 32).replace(":", "")
    return text[:16] if text[:2].isdigit() else ""


def record_from_dataset(
    ds: Dataset,
    sop_class_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> InstanceRecord:
    """Build the index record of one instance.

    Args:
        ds: The data set, read at least up to (but not including) the pixel data.
        sop_class_uid: The SOP Class UID the sender declared (C-STORE Affected SOP Class UID).
        sop_instance_uid: The SOP Instance UID the sender declared.

    Raises:
        DatasetError: A required UID is missing or invalid, or disagrees with the declared one
            (the caller maps this to "data set does not match SOP class").
        InvalidUIDError: A UID is not a valid DICOM UID.
    """
    study_uid = validate_uid(_text(ds, "StudyInstanceUID", 80), "Study Instance UID")
    series_uid = validate_uid(_text(ds, "SeriesInstanceUID", 80), "Series Instance UID")
    sop_uid = validate_uid(_text(ds, "SOPInstanceUID", 80), "SOP Instance UID")
    sop_class = validate_uid(_text(ds, "SOPClassUID", 80), "SOP Class UID")
    if sop_instance_uid is not None and validate_uid(sop_instance_uid) != sop_uid:
        raise DatasetMismatchError(
            f"SOP Instance UID in the data set ({sop_uid}) differs from the one in the request "
            f"({sop_instance_uid})"
        )
    if sop_class_uid is not None and validate_uid(sop_class_uid) != sop_class:
        raise DatasetMismatchError(
            f"SOP Class UID in the data set ({sop_class}) differs from the one in the request "
            f"({sop_class_uid})"
        )
    return InstanceRecord(
        patient_id=_text(ds, "PatientID", 64),
        patient_name=_text(ds, "PatientName"),
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID", 64),
        patient_birth_date=_date(ds, "PatientBirthDate"),
        patient_sex=_text(ds, "PatientSex", 16),
        study_instance_uid=study_uid,
        study_date=_date(ds, "StudyDate"),
        study_time=_time(ds, "StudyTime"),
        accession_number=_text(ds, "AccessionNumber", 16),
        study_id=_text(ds, "StudyID", 16),
        study_description=_text(ds, "StudyDescription", 64),
        referring_physician_name=_text(ds, "ReferringPhysicianName"),
        patient_age=_text(ds, "PatientAge", 4),
        institution_name=_text(ds, "InstitutionName", 64),
        series_instance_uid=series_uid,
        modality=_text(ds, "Modality", 16),
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription", 64),
        body_part_examined=_text(ds, "BodyPartExamined", 16),
        series_date=_date(ds, "SeriesDate"),
        series_time=_time(ds, "SeriesTime"),
        performed_procedure_step_start_date=_date(ds, "PerformedProcedureStepStartDate"),
        performed_procedure_step_start_time=_time(ds, "PerformedProcedureStepStartTime"),
        protocol_name=_text(ds, "ProtocolName", 64),
        station_name=_text(ds, "StationName", 16),
        sop_instance_uid=sop_uid,
        sop_class_uid=sop_class,
        instance_number=_int(ds, "InstanceNumber"),
        content_date=_date(ds, "ContentDate"),
        content_time=_time(ds, "ContentTime"),
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        number_of_frames=_int(ds, "NumberOfFrames"),
        specific_character_set=_text(ds, "SpecificCharacterSet", 128),
    )


_WARNINGS_THAT_MEAN_TRUNCATED = ("End of file reached", "Unexpected end of file", "truncated")
_UNDEFINED_LENGTH = 0xFFFFFFFF
#: Implicit VR LE, Explicit VR LE, Explicit VR BE: pixel data has a defined length.
_NATIVE_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")
#: With ``skip_large_values``, values longer than this are not read, only measured.
LARGE_VALUE = 64 * 1024


def parse_dataset(
    blob: bytes | memoryview, *, force: bool = False, skip_large_values: bool = False
) -> Dataset:
    """Parse a whole DICOM file held in memory and check that no element is cut short.

    pydicom reads a truncated value without complaint, so every top-level element's length is
    compared with the bytes actually present, encapsulated pixel data fragment by fragment.

    Args:
        force: Read a data set that has no File Meta Information.
        skip_large_values: In a native (uncompressed, not deflated) transfer syntax, do not
            copy values longer than ``LARGE_VALUE`` (pixel data) out of ``blob``: their bytes
            are only counted, and they read as None in the returned data set. Reading a
            512x512 image's pixels cost more CPU than the rest of its header.

    Raises:
        DatasetError: The bytes are not DICOM, or the data set is truncated or malformed.
    """
    import io
    import warnings

    from pydicom import dcmread
    from pydicom.dataelem import RawDataElement

    native = skip_large_values and dataset_offset(blob)[1] in _NATIVE_SYNTAXES
    defer = LARGE_VALUE if native else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = dcmread(io.BytesIO(blob), force=force, defer_size=defer)
            if defer is not None and any(
                isinstance(e, RawDataElement)
                and e.value is None
                and e.length == _UNDEFINED_LENGTH
                for e in _top_level(ds)
            ):
                # pydicom skipped an undefined-length value (rare in a native syntax) without
                # a trace of its extent: read everything so its end can be checked.
                defer = None
                ds = dcmread(io.BytesIO(blob), force=force)
            for elem in _top_level(ds):
                if not isinstance(elem, RawDataElement):
                    continue
                if elem.value is None:
                    if defer is not None and elem.length != _UNDEFINED_LENGTH:
                        # Skipped, not read: count its bytes as a read would have.
                        present = min(elem.length, max(0, len(blob) - elem.value_tell))
                        if present != elem.length:
                            raise DatasetError(
                                f"element {elem.tag} is truncated: {present} of "
                                f"{elem.length} bytes present"
                            )
                    continue
                if elem.length == 0xFFFFFFFF:
                    if elem.tag == 0x7FE00010:
                        _check_fragments(bytes(elem.value))
                    continue
                if len(elem.value) != elem.length:
                    raise DatasetError(
                        f"element {elem.tag} is truncated: {len(elem.value)} of "
                        f"{elem.length} bytes present"
                    )
            _check_complete(ds, blob)
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"not a readable DICOM data set: {exc}") from exc
    for w in caught:
        text = str(w.message)
        if any(marker in text for marker in _WARNINGS_THAT_MEAN_TRUNCATED):
            raise DatasetError(f"data set is truncated: {text}")
    if len(ds) == 0:
        raise DatasetError("no DICOM elements found")
    return ds


def _top_level(ds: Dataset) -> Iterator[Any]:
    """Top-level elements in tag order, as read (``Dataset.elements()`` would also read the
    values ``skip_large_values`` skipped)."""
    for tag in sorted(ds.keys()):
        yield ds.get_item(tag, keep_deferred=True)


def _check_complete(ds: Dataset, blob: bytes | memoryview) -> None:
    """The last element of the data set must end exactly where the bytes end.

    pydicom stops without a word when the file ends inside an element header, which would
    archive a cut-off copy (often without its pixel data) as if it were whole.
    """
    from pydicom.dataelem import RawDataElement

    last_start = -1
    last_tag = None
    last_end: int | None = None  # None: the end of the last element is not known
    last_is_open_sequence = False
    for elem in _top_level(ds):
        if isinstance(elem, RawDataElement):
            start = elem.value_tell
            if elem.length == 0xFFFFFFFF:  # value read up to its 8-byte delimitation item
                end: int | None = start + len(elem.value or b"") + 8
            else:
                end = start + elem.length
        else:  # converted by pydicom while reading: only the value's position is kept
            start = getattr(elem, "file_tell", None) or 0
            end = start if elem.is_empty and not elem.is_undefined_length else None
        if start > last_start:
            last_start, last_end, last_tag = start, end, elem.tag
            last_is_open_sequence = not isinstance(elem, RawDataElement) and bool(
                elem.is_undefined_length
            )
    if last_start < 0 or (last_end is None and not last_is_open_sequence):
        return
    stream: bytes | memoryview = blob
    if ds.file_meta.get("TransferSyntaxUID") == "1.2.840.10008.1.2.1.99":
        # Deflated: element offsets count bytes of the inflated stream.
        offset, _ = dataset_offset(blob)
        stream = zlib.decompress(bytes(blob[offset:]), -zlib.MAX_WBITS)
    total = len(stream)
    if last_end is None:
        # The data set ends with an undefined-length sequence: it must end with its
        # Sequence Delimitation Item (FFFE,E0DD), length 0, in either byte order.
        if bytes(stream[-8:]) not in (b"\xfe\xff\xdd\xe0\0\0\0\0", b"\xff\xfe\xe0\xdd\0\0\0\0"):
            raise DatasetError(
                f"data set is truncated: sequence {last_tag} has no closing delimiter"
            )
        return
    if last_end > total:
        raise DatasetError(
            f"data set is truncated: element {last_tag} needs {last_end - total} more byte(s)"
        )
    if last_end < total:
        raise DatasetError(
            f"data set is truncated: {total - last_end} byte(s) after element {last_tag} "
            "are not a whole element"
        )


def _check_fragments(value: bytes) -> None:
    """Walk the items of encapsulated pixel data (PS3.5 A.4); each must be complete."""
    pos, end = 0, len(value)
    while pos < end:
        if end - pos < 8:
            raise DatasetError("encapsulated pixel data is truncated inside an item header")
        group = int.from_bytes(value[pos : pos + 2], "little")
        elem = int.from_bytes(value[pos + 2 : pos + 4], "little")
        length = int.from_bytes(value[pos + 4 : pos + 8], "little")
        if (group, elem) != (0xFFFE, 0xE000):
            raise DatasetError(
                f"encapsulated pixel data: expected an item at offset {pos}, "
                f"found ({group:04X},{elem:04X})"
            )
        pos += 8 + length
        if pos > end:
            raise DatasetError("encapsulated pixel data is truncated inside a fragment")


# -- quick scan of a received data set -------------------------------------------------------

_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_MAX_DEPTH = 12


class _Unsure(Exception):
    """The quick scan met something only pydicom should judge."""


class _Scanner:
    """Walks a little-endian data set element by element, into undefined-length sequences and
    encapsulated pixel data, demanding that everything be complete and well formed."""

    def __init__(self, data: bytes | memoryview, implicit: bool) -> None:
        from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR

        self.data = memoryview(data).cast("B")
        self.implicit = implicit
        self.vrs = frozenset(vr.encode() for vr in STANDARD_VR)
        self.long_vrs = frozenset(vr.encode() for vr in EXPLICIT_VR_LENGTH_32)
        self.top: dict[BaseTag, DataElement | RawDataElement] = {}

    def elements(self, pos: int, end: int, depth: int, top: bool = False) -> None:
        """Walk the elements filling exactly ``[pos, end)``."""
        import struct

        from pydicom.dataelem import empty_value_for_VR

        data, implicit = self.data, self.implicit
        first = True
        while pos < end:
            if pos + 8 > end:
                raise _Unsure
            group, element = struct.unpack_from("<HH", data, pos)
            tag = group << 16 | element
            if group == 0xFFFE:
                raise _Unsure
            raw_vr = bytes(data[pos + 4 : pos + 6])
            if first and implicit and 0x40 < raw_vr[0] < 0x5B and 0x40 < raw_vr[1] < 0x5B:
                raise _Unsure  # looks explicit: pydicom would switch encodings
            first = False
            vr: str | None
            if implicit:
                vr, length, header = None, struct.unpack_from("<L", data, pos + 4)[0], 8
            elif raw_vr not in self.vrs:
                raise _Unsure
            elif raw_vr in self.long_vrs:
                if pos + 12 > end:
                    raise _Unsure
                length, header = struct.unpack_from("<L", data, pos + 8)[0], 12
                vr = raw_vr.decode()
            else:
                vr, length, header = raw_vr.decode(), struct.unpack_from("<H", data, pos + 6)[0], 8
            value_pos = pos + header
            if length == _UNDEFINED_LENGTH:
                if depth >= _MAX_DEPTH:
                    raise _Unsure
                if vr == "SQ" or (vr is None and _dictionary_vr(tag) == "SQ"):
                    pos = self.sequence(value_pos, end, depth + 1)
                elif top and tag == _PIXEL_DATA and vr in ("OB", "OW"):
                    pos = self.fragments(value_pos, end)
                else:
                    raise _Unsure
                continue
            pos = value_pos + length
            if pos > end:
                raise _Unsure  # cut short: parse_dataset says how
            if top:
                value: Any
                if length > LARGE_VALUE and tag != 0x00080005:
                    value = None  # as parse_dataset(skip_large_values=True) leaves it
                elif length == 0:
                    value = empty_value_for_VR(vr, raw=True)
                else:
                    value = bytes(data[value_pos:pos])
                key = BaseTag(tag)
                self.top[key] = RawDataElement(key, vr, length, value, value_pos, implicit, True)

    def sequence(self, pos: int, end: int, depth: int) -> int:
        """Walk the items of an undefined-length sequence; return the end of its delimiter."""
        import struct

        while pos + 8 <= end:
            group, element, length = struct.unpack_from("<HHL", self.data, pos)
            tag = group << 16 | element
            pos += 8
            if tag == _SEQUENCE_END:
                if length:
                    raise _Unsure
                return pos
            if tag != _ITEM:
                raise _Unsure
            if length == _UNDEFINED_LENGTH:
                pos = self.item(pos, end, depth)
            else:
                if pos + length > end:
                    raise _Unsure
                self.elements(pos, pos + length, depth)
                pos += length
        raise _Unsure

    def item(self, pos: int, end: int, depth: int) -> int:
        """Walk an undefined-length item; return the end of its delimiter."""
        import struct

        start = pos
        while pos + 8 <= end:
            group, element, length = struct.unpack_from("<HHL", self.data, pos)
            if group << 16 | element == _ITEM_END:
                if length:
                    raise _Unsure
                self.elements(start, pos, depth)
                return pos + 8
            # Skip one element to find the delimiter; elements() checks them afterwards.
            pos = self._skip(pos, end, depth)
        raise _Unsure

    def _skip(self, pos: int, end: int, depth: int) -> int:
        import struct

        group, element = struct.unpack_from("<HH", self.data, pos)
        if group == 0xFFFE:
            raise _Unsure
        raw_vr = bytes(self.data[pos + 4 : pos + 6])
        if self.implicit:
            vr, length, header = None, struct.unpack_from("<L", self.data, pos + 4)[0], 8
        elif raw_vr not in self.vrs:
            raise _Unsure
        elif raw_vr in self.long_vrs:
            if pos + 12 > end:
                raise _Unsure
            vr, length, header = raw_vr, struct.unpack_from("<L", self.data, pos + 8)[0], 12
        else:
            vr, length, header = raw_vr, struct.unpack_from("<H", self.data, pos + 6)[0], 8
        if length != _UNDEFINED_LENGTH:
            return pos + header + length
        if depth >= _MAX_DEPTH:
            raise _Unsure
        tag = group << 16 | element
        if vr == b"SQ" or (vr is None and _dictionary_vr(tag) == "SQ"):
            return self.sequence(pos + header, end, depth + 1)
        raise _Unsure

    def fragments(self, pos: int, end: int) -> int:
        """Walk encapsulated pixel data (PS3.5 A.4); return the end of its delimiter."""
        import struct

        while pos + 8 <= end:
            group, element, length = struct.unpack_from("<HHL", self.data, pos)
            tag = group << 16 | element
            pos += 8
            if tag == _SEQUENCE_END:
                if length:
                    raise _Unsure
                return pos
            if tag != _ITEM or length == _UNDEFINED_LENGTH or pos + length > end:
                raise _Unsure
            pos += length
        raise _Unsure


def _dictionary_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def scan_dataset(data: bytes | memoryview, transfer_syntax_uid: str) -> Dataset | None:
    """Check a received data set's structure quickly and return its top-level header elements.

    The C-STORE fast path in front of :func:`parse_dataset`: it walks every element (into
    undefined-length sequences and encapsulated pixel data), each complete, the last ending
    exactly at the end, all in one little-endian encoding. Whenever anything is unusual (big
    endian or deflate, an unknown VR, a cut, an encoding switch, an undefined length that is
    not a sequence...) it returns None and the caller runs :func:`parse_dataset`, which decides
    and says why. So it accepts only what ``parse_dataset`` accepts and never refuses anything.

    Args:
        data: The data set as received (no File Meta Information).
        transfer_syntax_uid: Its transfer syntax (the presentation context's).

    Returns:
        A data set of the top-level elements as pydicom reads them with
        ``skip_large_values`` (values over ``LARGE_VALUE`` left unread), without sequences of
        undefined length; or None.
    """
    from pydicom.charset import convert_encodings
    from pydicom.dataelem import convert_raw_data_element
    from pydicom.uid import UID

    ts = UID(transfer_syntax_uid)
    if not ts.is_transfer_syntax or not ts.is_little_endian or ts.is_deflated:
        return None
    scanner = _Scanner(data, ts.is_implicit_VR)
    try:
        scanner.elements(0, len(scanner.data), 0, top=True)
    except (_Unsure, IndexError, ValueError):
        return None
    if not scanner.top:
        return None
    ds = Dataset(scanner.top)
    encoding: str | list[str] = "iso8859"
    charset = scanner.top.get(BaseTag(0x00080005))
    if isinstance(charset, RawDataElement):
        try:
            encoding = convert_encodings(convert_raw_data_element(charset).value)
        except Exception:
            return None
    ds.set_original_encoding(ts.is_implicit_VR, True, encoding)
    return ds


def dataset_offset(blob: bytes | memoryview) -> tuple[int, str | None]:
    """Find where the data set starts in a file, after any preamble and File Meta Information.

    Returns:
        (offset, transfer syntax UID from the meta header, or None when there is none).
    """
    data = bytes(blob[:132])
    if len(data) >= 132 and data[128:132] == b"DICM":
        pos = 132
    elif data[:4] == b"DICM":
        pos = 4
    else:
        return 0, None
    view = memoryview(blob)
    transfer_syntax = None
    long_vrs = {b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC",
                b"UR", b"OD", b"OL", b"OV", b"SV", b"UV"}  # fmt: skip
    while pos + 8 <= len(view):
        group = int.from_bytes(view[pos : pos + 2], "little")
        if group != 0x0002:
            break
        elem = int.from_bytes(view[pos + 2 : pos + 4], "little")
        vr = bytes(view[pos + 4 : pos + 6])
        if vr in long_vrs:
            length = int.from_bytes(view[pos + 8 : pos + 12], "little")
            header = 12
        else:
            length = int.from_bytes(view[pos + 6 : pos + 8], "little")
            header = 8
        if elem == 0x0010:
            transfer_syntax = (
                bytes(view[pos + header : pos + header + length]).decode("ascii", "replace")
            ).rstrip("\0 ")
        pos += header + length
    return pos, transfer_syntax
