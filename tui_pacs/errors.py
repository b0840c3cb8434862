"""Domain errors: every failure a person may see carries a message and a short title."""

from __future__ import annotations


class PacsError(Exception):
    """Base of every tui-pacs error shown to a person.

    Args:
        message: What went wrong and, where possible, what to do about it.
        title: A short heading for an error dialog or a CLI prefix.
    """

    title = "Error"

    def __init__(self, message: str, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.message


class ConfigError(PacsError):
    """The configuration file or a key in it is invalid."""

    title = "Configuration error"


class StoreError(PacsError):
    """The index or the archive could not complete an operation."""

    title = "Storage error"


class InvalidUIDError(StoreError):
    """A UID is not a valid DICOM UID (PS3.5 9.1) and cannot be used as a path part."""

    title = "Invalid UID"


class DuplicateInstanceError(StoreError):
    """An instance with the same SOP Instance UID is already stored and the policy is reject."""

    title = "Duplicate instance"


class DatasetError(PacsError):
    """A data set cannot be read or does not carry what its SOP class requires."""

    title = "Invalid data set"


class DatasetMismatchError(DatasetError):
    """A data set lacks or contradicts the identifying attributes of its SOP class."""

    title = "Data set does not match SOP class"


class NetworkError(PacsError):
    """A DICOM association or DIMSE operation failed."""

    title = "Network error"

    def __init__(self, message: str, title: str | None = None, status: int | None = None) -> None:
        super().__init__(message, title)
        self.status = status


class UnknownNodeError(PacsError):
    """A remote node name is not in the registry."""

    title = "Unknown node"


class QueryError(PacsError):
    """A query identifier cannot be processed (C-FIND: Unable to process, 0xC000).

    Args:
        message: What is wrong with the identifier.
        offending_tags: Tags of the attributes at fault (C-FIND Offending Element).
    """

    title = "Invalid query"

    def __init__(self, message: str, offending_tags: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.offending_tags = offending_tags


class IdentifierMismatchError(QueryError):
    """A query identifier breaks the information model (C-FIND 0xA900): a missing or invalid
    Query/Retrieve Level, keys below that level, or missing unique keys of the levels above."""

    title = "Identifier does not match SOP class"


class RetrieveIdentifierError(PacsError):
    """A C-MOVE or C-GET identifier does not name objects the way PS3.4 C.4.2.2.1 requires."""

    title = "Invalid retrieve identifier"


class WorklistError(PacsError):
    """The worklist cannot make the requested change."""

    title = "Worklist"


class InvalidOrderError(WorklistError):
    """An order's fields are not valid.

    Args:
        message: Every problem, in one sentence per field.
        field_errors: ``{field: what is wrong}`` (snake_case DICOM keywords), for a form.
    """

    title = "Invalid order"

    def __init__(self, message: str, field_errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.field_errors = dict(field_errors or {})


class UnknownOrderError(WorklistError):
    """No order has this id."""

    title = "Unknown order"


class ProcedureStepError(PacsError):
    """An MPPS N-CREATE or N-SET cannot be applied (PS3.4 F.7.2).

    Args:
        message: What is wrong (sent as the Error Comment).
        offending_tags: Attributes at fault, if any.
    """

    title = "Performed procedure step"

    def __init__(self, message: str, offending_tags: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.offending_tags = offending_tags


class DuplicateProcedureStepError(ProcedureStepError):
    """N-CREATE of an MPPS instance that already exists (0x0111)."""


class UnknownProcedureStepError(ProcedureStepError):
    """N-SET of an MPPS instance we do not have (0x0112)."""


class ProcedureStepStateError(ProcedureStepError):
    """N-SET of an MPPS that is already COMPLETED or DISCONTINUED, or a bad transition (0x0110)."""


class InvalidProcedureStepError(ProcedureStepError):
    """An attribute is missing, or its value is not allowed (0x0120 / 0x0106)."""

    def __init__(
        self, message: str, offending_tags: tuple[int, ...] = (), missing: bool = False
    ) -> None:
        super().__init__(message, offending_tags)
        self.missing = missing
