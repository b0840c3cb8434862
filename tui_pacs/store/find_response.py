"""Build C-FIND response identifiers cheaply: index rows become pre-encoded data sets.

A C-FIND SCP answering 1,000 matches spends most of its time encoding response identifiers. The
data sets made here hold :class:`~pydicom.dataelem.RawDataElement` values already encoded for the
negotiated transfer syntax and character set, and say so with
:meth:`~pydicom.dataset.Dataset.set_original_encoding`; ``pydicom.filewriter.write_dataset`` (which
pynetdicom calls) then copies their bytes as they are instead of converting every value.

Character sets (PS3.5 6.1, PS3.4 C.4.1.1.3.2): text is encoded in the query's Specific Character
Set. When a value of a match cannot be encoded in it, that whole response is encoded in UTF-8 and
says ``ISO_IR 192``; without a Specific Character Set in the query, responses carry none while
their text is ASCII.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from pydicom.charset import convert_encodings, default_encoding, encode_string, python_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.valuerep import PersonName

#: Value representations whose text depends on the Specific Character Set (PS3.5 6.1.2.3).
CHARSET_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})
#: The replacement character set of last resort.
UTF8_TERM = "ISO_IR 192"

Encoder = Callable[[str, str], bytes]
"""Encodes one text value of a given VR; raises UnicodeEncodeError if it cannot."""


def _pad(data: bytes, vr: str) -> bytes:
    if len(data) % 2:
        return data + (b"\0" if vr == "UI" else b" ")
    return data


def text_encoder(charset: Sequence[str]) -> Encoder:
    """An encoder for the Specific Character Set terms ``charset`` (empty: the default repertoire).

    Single-byte and stand-alone character sets (ISO_IR 100, ISO_IR 192, GB18030 ...) use Python's
    codec directly. ISO 2022 code extensions go through pydicom, with its fall-back warnings
    turned into errors so that an unencodable value is noticed instead of mangled.
    """
    terms = [t.strip() for t in charset] if charset else []
    if not terms or terms == [""] or terms == ["ISO_IR 6"]:
        codec: str | None = "ascii"
    elif len(terms) == 1 and not terms[0].startswith("ISO 2022"):
        codec = python_encoding.get(terms[0])
    else:
        codec = None
    if codec is not None:
        if codec == default_encoding:
            codec = "ascii"

        def encode(value: str, vr: str) -> bytes:
            return value.encode(codec)

        return encode
    encodings = convert_encodings(list(terms))

    def encode_iso2022(value: str, vr: str) -> bytes:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                if vr == "PN":
                    return PersonName(value).encode(encodings)
                return encode_string(value, encodings)
            except (UserWarning, LookupError, ValueError) as exc:
                raise UnicodeEncodeError("iso2022", value, 0, len(value), str(exc)) from None

    return encode_iso2022


def _utf8(value: str, vr: str) -> bytes:
    return value.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Column:
    """A response attribute whose value comes from a column of the result row.

    Attributes:
        tag: The attribute.
        vr: Its value representation.
        index: Position of the value in the row.
    """

    tag: int
    vr: str
    index: int


class ResponseBuilder:
    """Turns result rows into response identifiers for one C-FIND request.

    Args:
        columns: Attributes taken from each row.
        constants: Attributes with the same value in every response (already decoded text;
            ``""`` for the zero-length values of keys the index does not hold), with their VR.
        charset: The query's Specific Character Set terms, or None if it had none.
        implicit_vr: The negotiated transfer syntax is implicit VR.
        little_endian: The negotiated transfer syntax is little endian.
    """

    def __init__(
        self,
        columns: Sequence[Column],
        constants: dict[int, tuple[str, str]],
        charset: Sequence[str] | None,
        *,
        implicit_vr: bool,
        little_endian: bool,
    ) -> None:
        self.implicit_vr = implicit_vr
        self.little_endian = little_endian
        self._us = struct.Struct("<H" if little_endian else ">H")
        self._columns = [(BaseTag(c.tag), c.vr, c.index) for c in columns]
        self._encode = text_encoder(charset or ())
        #: Encodings pydicom derives from each variant's Specific Character Set; a data set
        #: whose "original" encodings equal them is written without being re-encoded.
        if charset:
            self._charset_element: bytes | None = "\\".join(charset).encode("ascii", "replace")
            self._original: str | list[str] = convert_encodings(
                list(charset) if len(charset) > 1 else charset[0]
            )
        else:
            self._charset_element = None
            self._original = default_encoding
        self._static = self._constants(constants, self._encode, self._charset_element)
        self._static_utf8 = self._constants(constants, _utf8, UTF8_TERM.encode())
        self._original_utf8 = convert_encodings(UTF8_TERM)
        #: Responses that fell back to UTF-8 because the query's character set could not hold them.
        self.utf8_fallbacks = 0

    def _raw(self, tag: BaseTag, vr: str, data: bytes) -> RawDataElement:
        return RawDataElement(tag, vr, len(data), data, 0, self.implicit_vr, self.little_endian)

    def _constants(
        self, constants: dict[int, tuple[str, str]], encode: Encoder, charset: bytes | None
    ) -> dict[BaseTag, RawDataElement] | None:
        out: dict[BaseTag, RawDataElement] = {}
        try:
            for tag, (vr, text) in constants.items():
                out[BaseTag(tag)] = self._raw(BaseTag(tag), vr, self._value(text, vr, encode))
        except UnicodeEncodeError:
            return None
        if charset is not None:
            out[BaseTag(0x00080005)] = self._raw(BaseTag(0x00080005), "CS", _pad(charset, "CS"))
        return out

    def _value(self, value: object, vr: str, encode: Encoder) -> bytes:
        if value is None or value == "":
            return b""
        if vr in CHARSET_VRS:
            return _pad(encode(str(value), vr), vr)
        if vr == "US":
            number = int(value)  # type: ignore[call-overload]
            return self._us.pack(min(max(number, 0), 0xFFFF))
        if vr == "SQ":
            return b""
        return _pad(str(value).encode("ascii", "replace"), vr)

    def build(self, row: Sequence[object]) -> Dataset:
        """The response identifier of one result row."""
        if self._static is not None:
            try:
                return self._build(row, self._static, self._encode, self._original)
            except UnicodeEncodeError:
                pass
        self.utf8_fallbacks += 1
        assert self._static_utf8 is not None
        return self._build(row, self._static_utf8, _utf8, self._original_utf8)

    def _build(
        self,
        row: Sequence[object],
        static: dict[BaseTag, RawDataElement],
        encode: Encoder,
        original: str | list[str],
    ) -> Dataset:
        elements = static.copy()
        implicit, little = self.implicit_vr, self.little_endian
        for tag, vr, index in self._columns:
            data = self._value(row[index], vr, encode)
            elements[tag] = RawDataElement(tag, vr, len(data), data, 0, implicit, little)
        ds = Dataset(cast("dict[BaseTag, DataElement | RawDataElement]", elements))
        ds.set_original_encoding(implicit, little, original)
        return ds
