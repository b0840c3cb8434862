"""A DICOM upper layer peer on a raw socket: PDUs built byte by byte (PS3.8 9.3), for tests.

It sends what a well-behaved SCU would, and whatever a broken one might: PDUs of any type and
length, P-DATA on any context, fragments of any size.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
#: Long enough for any answer on loopback; a hang fails the test instead of stalling it.
TIMEOUT = 10.0


def _uid(uid: str) -> bytes:
    return uid.encode("ascii")


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def pdu(pdu_type: int, body: bytes) -> bytes:
    """Any PDU: type, reserved byte, 4-byte length, body."""
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def associate_rq(
    contexts: list[tuple[int, str, list[str]]],
    *,
    calling: str = "RAWSCU",
    called: str = "TUI_PACS",
    max_length: int = 16384,
    extra_user_items: bytes = b"",
) -> bytes:
    """An A-ASSOCIATE-RQ proposing ``(context id, abstract syntax, transfer syntaxes)``."""
    body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode()
    body += b"\0" * 32 + _item(0x10, _uid(APPLICATION_CONTEXT))
    for cid, abstract, syntaxes in contexts:
        sub = _item(0x30, _uid(abstract)) + b"".join(_item(0x40, _uid(ts)) for ts in syntaxes)
        body += _item(0x20, struct.pack(">BBBB", cid, 0, 0, 0) + sub)
    user = _item(0x51, struct.pack(">I", max_length)) + _item(0x52, _uid("1.2.826.0.1.3680043.9.1"))
    body += _item(0x50, user + extra_user_items)
    return pdu(0x01, body)


def p_data(*pdvs: tuple[int, int, bytes]) -> bytes:
    """A P-DATA-TF PDU holding PDVs ``(context id, message control header, value)``."""
    body = b"".join(struct.pack(">IBB", len(v) + 2, cid, ctrl) + v for cid, ctrl, v in pdvs)
    return pdu(0x04, body)


A_RELEASE_RQ = pdu(0x05, b"\0\0\0\0")
A_ABORT = pdu(0x07, b"\0\0\0\0")


def _element(element: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", 0, element, len(value)) + value


def command(fields: dict[int, bytes | int | str]) -> bytes:
    """A command set (Implicit VR Little Endian) with its group length; ints become US."""
    body = b""
    for element in sorted(fields):
        value = fields[element]
        if isinstance(value, int):
            raw = value.to_bytes(2, "little")
        elif isinstance(value, str):
            raw = value.encode("latin-1")
        else:
            raw = value
        body += _element(element, raw)
    return _element(0x0000, len(body).to_bytes(4, "little")) + body


def c_store_rq(message_id: int, sop_class: str, sop_instance: str) -> bytes:
    return command(
        {0x0002: sop_class, 0x0100: 0x0001, 0x0110: message_id, 0x0700: 0, 0x0800: 0x0000,
         0x1000: sop_instance}
    )


def c_find_rq(message_id: int, sop_class: str = STUDY_ROOT_FIND) -> bytes:
    return command({0x0002: sop_class, 0x0100: 0x0020, 0x0110: message_id, 0x0700: 0, 0x0800: 0})


def c_cancel_rq(message_id: int) -> bytes:
    return command({0x0100: 0x0FFF, 0x0120: message_id, 0x0800: 0x0101})


def c_echo_rq(message_id: int) -> bytes:
    return command({0x0002: VERIFICATION, 0x0100: 0x0030, 0x0110: message_id, 0x0800: 0x0101})


@dataclass
class Pdu:
    type: int
    body: bytes


class Peer:
    """One TCP connection to the listener speaking raw PDUs."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _exact(self, size: int) -> bytes:
        out = b""
        while len(out) < size:
            chunk = self.sock.recv(size - len(out))
            if not chunk:
                raise ConnectionError(f"closed after {len(out)} of {size} bytes")
            out += chunk
        return out

    def read_pdu(self) -> Pdu:
        pdu_type, _, length = struct.unpack(">BBI", self._exact(6))
        return Pdu(pdu_type, self._exact(length))

    def associate(self, rq: bytes) -> Pdu:
        self.send(rq)
        return self.read_pdu()

    def read_response(self) -> tuple[Dataset, list[int]]:
        """One complete command set; also the lengths of the P-DATA-TF PDUs it came in."""
        raw, sizes = b"", []
        while True:
            got = self.read_pdu()
            assert got.type == 0x04, f"expected P-DATA-TF, got PDU type 0x{got.type:02X}"
            sizes.append(len(got.body))
            pos, last = 0, False
            while pos < len(got.body):
                length, _cid, ctrl = struct.unpack_from(">IBB", got.body, pos)
                raw += got.body[pos + 6 : pos + 4 + length]
                pos += 4 + length
                assert ctrl & 0x01, "expected a command fragment"
                last = bool(ctrl & 0x02)
            if last:
                return read_dataset(BytesIO(raw), True, True), sizes

    def read_message(self) -> tuple[Dataset, bytes | None]:
        """One DIMSE message: its command set and, when it has one, its data set's bytes."""
        command_raw, data_raw = b"", b""
        command_done, has_data = False, False
        while True:
            got = self.read_pdu()
            assert got.type == 0x04, f"expected P-DATA-TF, got PDU type 0x{got.type:02X}"
            pos = 0
            while pos < len(got.body):
                length, _cid, ctrl = struct.unpack_from(">IBB", got.body, pos)
                value = got.body[pos + 6 : pos + 4 + length]
                pos += 4 + length
                if ctrl & 0x01:
                    command_raw += value
                    if ctrl & 0x02:
                        command_done = True
                        cmd = read_dataset(BytesIO(command_raw), True, True)
                        has_data = cmd.CommandDataSetType != 0x0101
                        if not has_data:
                            return cmd, None
                else:
                    data_raw += value
                    if ctrl & 0x02:
                        assert command_done and has_data
                        return cmd, data_raw

    def closed_by_peer(self, timeout: float = TIMEOUT) -> bool:
        """True once the listener closed the connection (reads until EOF)."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
        return False

    def close(self) -> None:
        self.sock.close()


def accepted_contexts(ac: Pdu) -> dict[int, tuple[int, str]]:
    """``{context id: (result, transfer syntax)}`` of an A-ASSOCIATE-AC."""
    decoded = A_ASSOCIATE_AC()
    decoded.decode(struct.pack(">BBI", 0x02, 0, len(ac.body)) + ac.body)
    return {
        int(cx.context_id): (int(cx.result), str(cx.transfer_syntax[0]))
        for cx in decoded.to_primitive().presentation_context_definition_results_list
    }


def rejection(rj: Pdu) -> tuple[int, int, int]:
    """``(result, source, diagnostic)`` of an A-ASSOCIATE-RJ."""
    decoded = A_ASSOCIATE_RJ()
    decoded.decode(struct.pack(">BBI", 0x03, 0, len(rj.body)) + rj.body)
    return decoded.result, decoded.source, decoded.reason_diagnostic
