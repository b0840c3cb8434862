"""DIMSE status codes used by tui-pacs, named as PS3.4 and PS3.7 Annex C name them."""

from __future__ import annotations

from pydicom.dataset import Dataset

#: Error Comment (0000,0902) is an LO: at most 64 characters (PS3.7 E.1, PS3.5 6.2).
ERROR_COMMENT_MAX = 64

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
#: PS3.4 C.4.1.1.4: Failure: Unable to process (first code of the 0xC000-0xCFFF range; same
#: code as B.2.3's Cannot understand, named for what it means in a C-FIND response).
UNABLE_TO_PROCESS = 0xC000
#: PS3.4 C.4.1.1.4 / C.4.2.1.5 / C.4.3.1.4: Pending (matches or sub-operations continuing).
PENDING = 0xFF00
#: PS3.4 C.4.1.1.4: Pending, but one or more Optional Keys were not supported.
PENDING_WARNING = 0xFF01
#: PS3.4 C.4.1.1.4 / C.4.2.1.5 / C.4.3.1.4: Cancel (terminated due to a C-CANCEL).
CANCEL = 0xFE00
#: PS3.4 C.4.2.1.5 / C.4.3.1.4: Warning: sub-operations complete, one or more failures or warnings.
SUB_OPERATIONS_COMPLETE_WITH_FAILURES = 0xB000
#: PS3.7 Annex C (general status): Refused: Not Authorized (the calling AE may not use the service).
REFUSED_NOT_AUTHORIZED = 0x0124
#: PS3.7 Annex C (general status): Unrecognized Operation, not one agreed for this association.
UNRECOGNIZED_OPERATION = 0x0211
#: PS3.4 C.4.2.1.5 / C.4.3.1.4: Refused: Out of Resources – Unable to calculate number of matches.
OUT_OF_RESOURCES_UNABLE_TO_CALCULATE_MATCHES = 0xA701
#: PS3.4 C.4.2.1.5 / C.4.3.1.4: Refused: Out of Resources – Unable to perform sub-operations
#: (also the final status of a C-MOVE or C-GET whose sub-operations all failed).
OUT_OF_RESOURCES_UNABLE_TO_PERFORM_SUB_OPERATIONS = 0xA702
#: PS3.4 C.4.2.1.5: Refused: Move Destination unknown.
MOVE_DESTINATION_UNKNOWN = 0xA801
#: PS3.4 C.4.2.1.5 / C.4.3.1.4: Error: Identifier does not match SOP Class (same code as B.2.3's
#: data set mismatch, named for what it means in a C-MOVE or C-GET response).
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900

#: PS3.7 C.4.? (N-CREATE, N-SET): Failure: Invalid attribute value.
INVALID_ATTRIBUTE_VALUE = 0x0106
#: PS3.7 Annex C: Failure: No such SOP Instance (also a Failure Reason, PS3.3 C.14.1.1).
NO_SUCH_SOP_INSTANCE = 0x0112
#: PS3.7 Annex C: Failure: Invalid argument value (N-ACTION).
INVALID_ARGUMENT_VALUE = 0x0115
#: PS3.7 Annex C: Failure: No such SOP Class.
NO_SUCH_SOP_CLASS = 0x0118
#: PS3.7 Annex C: Failure: Class-Instance conflict (also a Failure Reason, PS3.3 C.14.1.1).
CLASS_INSTANCE_CONFLICT = 0x0119
#: PS3.7 Annex C: Failure: Missing attribute (N-CREATE).
MISSING_ATTRIBUTE = 0x0120
#: PS3.7 Annex C: Failure: No such action type (N-ACTION).
NO_SUCH_ACTION_TYPE = 0x0123
#: PS3.4 F.7.2.2 (MPPS N-SET) Error ID (0000,0903) with 0x0110: the step may no longer be updated.
ERROR_ID_MAY_NO_LONGER_BE_UPDATED = 0xA710

_NAMES = {
    SUCCESS: "Success",
    DUPLICATE_SOP_INSTANCE: "Duplicate SOP Instance",
    PROCESSING_FAILURE: "Processing Failure",
    REFUSED_OUT_OF_RESOURCES: "Refused: Out of Resources",
    ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS: "Error: Data Set does not match SOP Class",
    ERROR_CANNOT_UNDERSTAND: "Error: Cannot understand",
    PENDING: "Pending",
    PENDING_WARNING: "Pending (optional keys not supported)",
    CANCEL: "Cancel",
    SUB_OPERATIONS_COMPLETE_WITH_FAILURES: "Warning: sub-operations complete with failures",
    REFUSED_NOT_AUTHORIZED: "Refused: Not Authorized",
    OUT_OF_RESOURCES_UNABLE_TO_CALCULATE_MATCHES: (
        "Refused: Out of Resources - Unable to calculate number of matches"
    ),
    OUT_OF_RESOURCES_UNABLE_TO_PERFORM_SUB_OPERATIONS: (
        "Refused: Out of Resources - Unable to perform sub-operations"
    ),
    MOVE_DESTINATION_UNKNOWN: "Refused: Move Destination unknown",
    INVALID_ATTRIBUTE_VALUE: "Invalid attribute value",
    NO_SUCH_SOP_INSTANCE: "No such SOP Instance",
    INVALID_ARGUMENT_VALUE: "Invalid argument value",
    NO_SUCH_SOP_CLASS: "No such SOP Class",
    CLASS_INSTANCE_CONFLICT: "Class-Instance conflict",
    MISSING_ATTRIBUTE: "Missing attribute",
    NO_SUCH_ACTION_TYPE: "No such action type",
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


def is_pending(status: int | None) -> bool:
    """True for the Pending statuses of C-FIND, C-MOVE and C-GET responses."""
    return status in (PENDING, PENDING_WARNING)


def is_warning(status: int | None) -> bool:
    """True for a Warning status (0x0001, 0x0107, 0x0116 or 0xBxxx, PS3.7 C)."""
    return status is not None and (status in (0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF)


def failure(
    status: int, message: str, *, offending: tuple[int, ...] = (), error_id: int | None = None
) -> Dataset:
    """A failure response's status, Error Comment and, where given, Offending Element or Error ID.

    pynetdicom moves these elements from the returned data set into the response command.
    """
    rsp = Dataset()
    rsp.Status = status
    rsp.ErrorComment = message[:ERROR_COMMENT_MAX]
    if offending:
        rsp.OffendingElement = list(offending)
    if error_id is not None:
        rsp.ErrorID = error_id
    return rsp
