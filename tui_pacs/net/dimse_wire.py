"""DIMSE messages and P-DATA-TF PDUs on the wire, encoded and decoded by hand (PS3.7, PS3.8).

What the store acceptor (net/store_acceptor.py) reads and writes: command sets (always Implicit VR
Little Endian, group 0000, PS3.7 6.3.1) and the P-DATA-TF PDUs that carry them and their data sets
(PS3.8 9.3.5). pynetdicom builds a Dataset and several objects per message for the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

# PDU types (PS3.8 9.3.1)
A_ASSOCIATE_RQ_TYPE = 0x01
P_DATA_TF_TYPE = 0x04
A_RELEASE_RQ_TYPE = 0x05
A_ABORT_TYPE = 0x07
KNOWN_PDU_TYPES = frozenset(range(0x01, 0x08))

# A-ABORT provider reasons (PS3.8 9.3.8)
REASON_NOT_SPECIFIED = 0x00
REASON_UNRECOGNIZED_PDU = 0x01
REASON_UNEXPECTED_PDU = 0x02
REASON_UNEXPECTED_PARAMETER = 0x05
REASON_INVALID_PARAMETER = 0x06

# DIMSE command fields (PS3.7 E.1)
C_STORE_RQ = 0x0001
C_FIND_RQ = 0x0020
C_ECHO_RQ = 0x0030
C_CANCEL_RQ = 0x0FFF
#: Requests of other services: answered "Unrecognized operation" (0x0211) on these contexts.
OTHER_REQUESTS = frozenset({0x0010, 0x0020, 0x0021, 0x0100, 0x0110, 0x0120, 0x0130, 0x0140, 0x0150})
NO_DATA_SET = 0x0101
#: Command Data Set Type of a message with a data set (any value but 0x0101; pynetdicom's).
DATA_SET_PRESENT = 0x0001

PDU_HEADER = struct.Struct(">BxI")
PDV_HEADER = struct.Struct(">IBB")
_ELEMENT = struct.Struct("<HHI")


class ProtocolError(Exception):
    """The peer broke the protocol: abort with this A-ABORT provider reason."""

    def __init__(self, reason: int, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_command(raw: bytes | bytearray) -> dict[int, bytes]:
    """A DIMSE command set (Implicit VR Little Endian, group 0000) to ``{element: value}``.

    Raises:
        ProtocolError: Not a well-formed command set.
    """
    out: dict[int, bytes] = {}
    pos, end = 0, len(raw)
    while pos < end:
        if pos + 8 > end:
            raise ProtocolError(REASON_INVALID_PARAMETER, "command set cut inside an element")
        group, element, length = _ELEMENT.unpack_from(raw, pos)
        pos += 8
        if group != 0 or pos + length > end:
            raise ProtocolError(REASON_INVALID_PARAMETER, "malformed command set")
        out[element] = bytes(raw[pos : pos + length])
        pos += length
    for element in (0x0100, 0x0800):
        if len(out.get(element, b"")) != 2:
            raise ProtocolError(
                REASON_INVALID_PARAMETER, f"command set without (0000,{element:04X})"
            )
    return out


def us_value(command: dict[int, bytes], element: int) -> int | None:
    value = command.get(element)
    return int.from_bytes(value, "little") if value is not None and len(value) == 2 else None


def ui_value(command: dict[int, bytes], element: int) -> str | None:
    value = command.get(element)
    # pydicom strips the padding (NUL, space) of a UI value the same way.
    return None if value is None else value.decode("latin-1").rstrip("\0 ")


def _element(element: int, value: bytes) -> bytes:
    return _ELEMENT.pack(0, element, len(value)) + value


def _uid_bytes(uid: str) -> bytes:
    raw = uid.encode("latin-1")
    return raw + b"\0" if len(raw) % 2 else raw


def status_details(
    *,
    offending: Iterable[int] = (),
    error_comment: str | None = None,
    error_id: int | None = None,
) -> bytes:
    """Offending Element (0000,0901), Error Comment (0000,0902) and Error ID (0000,0903) of a
    response's status (PS3.7 C), encoded for :func:`encode_response`.
    """
    parts = []
    tags = b"".join(struct.pack("<HH", tag >> 16, tag & 0xFFFF) for tag in offending)
    if tags:
        parts.append(_element(0x0901, tags))
    if error_comment is not None:
        raw = error_comment.encode("latin-1", "replace")
        parts.append(_element(0x0902, raw + b" " if len(raw) % 2 else raw))
    if error_id is not None:
        parts.append(_element(0x0903, error_id.to_bytes(2, "little")))
    return b"".join(parts)


def encode_response(
    command_field: int,
    message_id: int,
    status: int,
    sop_class_uid: str | None,
    sop_instance_uid: str | None,
    *,
    data_set: bool = False,
    details: bytes = b"",
) -> bytes:
    """A response command set (Implicit VR Little Endian, PS3.7 9.3 and 9.1).

    Args:
        data_set: A data set follows (an identifier of a C-FIND Pending response).
        details: The status's further elements, from :func:`status_details`.
    """
    parts = []
    if sop_class_uid is not None:
        parts.append(_element(0x0002, _uid_bytes(sop_class_uid)))
    parts.append(_element(0x0100, command_field.to_bytes(2, "little")))
    parts.append(_element(0x0120, message_id.to_bytes(2, "little")))
    data_set_type = DATA_SET_PRESENT if data_set else NO_DATA_SET
    parts.append(_element(0x0800, data_set_type.to_bytes(2, "little")))
    parts.append(_element(0x0900, status.to_bytes(2, "little")))
    if details:
        parts.append(details)
    if sop_instance_uid is not None:
        parts.append(_element(0x1000, _uid_bytes(sop_instance_uid)))
    body = b"".join(parts)
    return _element(0x0000, len(body).to_bytes(4, "little")) + body


def p_data_pdus(
    context_id: int, command: bytes, max_length: int | None, *, is_command: bool = True
) -> bytes:
    """A command set (or a data set) as P-DATA-TF PDUs, each within the peer's maximum length
    (PS3.8 9.3.5; the message control header of each PDV in E.2).

    ``max_length`` is the peer's Maximum Length Received: the largest P-DATA-TF variable field
    (PDV items with their headers); 0 or None means no limit.
    """
    size = max(1, max_length - 6) if max_length else max(1, len(command))
    kind = 0x01 if is_command else 0x00
    out = []
    for start in range(0, len(command), size):
        fragment = command[start : start + size]
        last = start + size >= len(command)
        control = kind | 0x02 if last else kind
        out.append(PDU_HEADER.pack(P_DATA_TF_TYPE, len(fragment) + 6))
        out.append(PDV_HEADER.pack(len(fragment) + 2, context_id, control))
        out.append(fragment)
    return b"".join(out)
