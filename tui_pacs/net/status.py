"""DIMSE status codes used by tui-pacs, named as PS3.4 and PS3.7 Annex C name them."""

from __future__ import annotations

SUCCESS = 0x0000
#: PS3.7 C.4.? (N-CREATE) — also what dcm4chee returns for a C-STORE refused as a duplicate.
DUPLICATE_SOP_INSTANCE = 0x0111
#: PS3.7 Annex C: general failure when the SCP cannot process the request.
PROCESSING_FAILURE = 0x0110
#: PS3.4 B.2.3: Refused: Out of Resources.
REFUSED_OUT_OF_RESOURCES = 0xA700
#: PS3.4 B.2.3: Error: Data Set does not match SOP Class.
ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
#: PS3.4 B.2.3: Error: Cannot understand.
ERROR_CANNOT_UNDERSTAND = 0xC000

_NAMES = {
    SUCCESS: "Success",
    DUPLICATE_SOP_INSTANCE: "Duplicate SOP Instance",
    PROCESSING_FAILURE: "Processing Failure",
    REFUSED_OUT_OF_RESOURCES: "Refused: Out of Resources",
    ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS: "Error: Data Set does not match SOP Class",
    ERROR_CANNOT_UNDERSTAND: "Error: Cannot understand",
}


def describe(status: int | None) -> str:
    """Human text for a status code, e.g. ``0xA700 Refused: Out of Resources``."""
    if status is None:
        return "no status"
    name = _NAMES.get(status)
    if name is None:
        if 0xA700 <= status <= 0xA7FF:
            name = "Refused: Out of Resources"
        elif 0xA900 <= status <= 0xA9FF:
            name = "Error: Data Set does not match SOP Class"
        elif 0xC000 <= status <= 0xCFFF:
            name = "Error: Cannot understand"
        elif 0xB000 <= status <= 0xBFFF:
            name = "Warning"
        elif status in (0xFF00, 0xFF01):
            name = "Pending"
        else:
            name = "Failure"
    return f"0x{status:04X} {name}"
