"""The tech desk's orders: create, edit, cancel, list, import from CSV, and match to images.

One :class:`WorklistService` serves the console, the CLI and the node. The console and the CLI
create, edit and cancel orders (validated here, field by field, so a form can show each error
beside its field) and read the board: the day's orders with the images received for each, their
MPPS and their flags, plus the studies that match no order. The node answers Modality Worklist
queries and MPPS requests with it, and moves orders along as their images arrive
(:meth:`WorklistService.settle`).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import fields as dc_fields
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import peewee as pw
from pydicom.uid import generate_uid

from tui_pacs.config import Config, validate_ae_title
from tui_pacs.errors import (
    ConfigError,
    InvalidOrderError,
    InvalidProcedureStepError,
    InvalidUIDError,
    WorklistError,
)
from tui_pacs.model import (
    CsvImportReport,
    CsvRowError,
    OrderFields,
    OrderProgress,
    OrderStatus,
    PerformedStepInfo,
    WorklistBoard,
    WorklistFilter,
    WorklistOrder,
)
from tui_pacs.store import mpps as mpps_store
from tui_pacs.store import worklist as order_store
from tui_pacs.store.archive import validate_uid
from tui_pacs.store.db import use_database
from tui_pacs.store.models import utcnow
from tui_pacs.store.mwl import MwlMatches, MwlOptions, find_worklist
from tui_pacs.store.worklist_board import order_progress, settle_orders, unmatched_studies

if TYPE_CHECKING:
    # The network stack loads only when the node uses the DICOM services: the console's
    # worklist pane reads the board through this module without it.
    from pynetdicom.presentation import PresentationContext

    from tui_pacs.net.find_scp import FindRequest
    from tui_pacs.net.mpps_scp import ProcedureStepRequest
    from tui_pacs.net.scp import AuthorizeCallable

log = logging.getLogger(__name__)

#: CSV columns (DICOM keywords) and the order field each fills.
CSV_COLUMNS: dict[str, str] = {
    "PatientName": "patient_name",
    "PatientID": "patient_id",
    "PatientBirthDate": "patient_birth_date",
    "PatientSex": "patient_sex",
    "AccessionNumber": "accession_number",
    "RequestedProcedureID": "requested_procedure_id",
    "RequestedProcedureDescription": "requested_procedure_description",
    "ScheduledProcedureStepID": "scheduled_procedure_step_id",
    "ScheduledProcedureStepDescription": "scheduled_procedure_step_description",
    "Modality": "modality",
    "ScheduledStationAETitle": "scheduled_station_ae_title",
    "ScheduledStationName": "scheduled_station_name",
    "ScheduledProcedureStepStartDate": "scheduled_procedure_step_start_date",
    "ScheduledProcedureStepStartTime": "scheduled_procedure_step_start_time",
    "ScheduledPerformingPhysicianName": "scheduled_performing_physician_name",
    "StudyInstanceUID": "study_instance_uid",
    # The Requested Procedure Code Sequence item, by the keywords of its attributes.
    "CodeValue": "requested_procedure_code_value",
    "CodingSchemeDesignator": "requested_procedure_coding_scheme_designator",
    "CodeMeaning": "requested_procedure_code_meaning",
}
#: Fields an order must have.
REQUIRED = ("patient_name", "patient_id", "modality", "scheduled_procedure_step_start_date")
#: Longest value of each text field (its DICOM VR's limit).
MAX_LENGTH: dict[str, int] = {
    "patient_name": 64 * 3 + 2,
    "patient_id": 64,
    "accession_number": 16,
    "requested_procedure_id": 16,
    "requested_procedure_description": 64,
    "requested_procedure_code_value": 16,
    "requested_procedure_coding_scheme_designator": 16,
    "requested_procedure_code_meaning": 64,
    "scheduled_procedure_step_id": 16,
    "scheduled_procedure_step_description": 64,
    "scheduled_station_name": 16,
    "scheduled_performing_physician_name": 64 * 3 + 2,
}
#: Human names of the fields, for messages.
LABELS: dict[str, str] = {field: keyword for keyword, field in CSV_COLUMNS.items()}
_MODALITY = re.compile(r"^[A-Z0-9_]{1,16}$")
_TIME = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$")


# -- validation ------------------------------------------------------------------------------


def _check_date(value: str) -> str:
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text = text.replace("-", "")
    if not re.fullmatch(r"\d{8}", text):
        raise ValueError(f"{value!r} is not a date (YYYYMMDD or YYYY-MM-DD)")
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ValueError(f"{value!r} is not a calendar date") from None
    return text


def _check_time(value: str) -> str:
    """``HHMM[SS[.FFFFFF]]`` or ``HH:MM[:SS]``, normalised to ``HHMMSS[.FFFFFF]``."""
    text = value.strip().replace(":", "")
    match = _TIME.fullmatch(text)
    if not match:
        raise ValueError(f"{value!r} is not a time (HHMM, HHMMSS or HH:MM)")
    hours, minutes, seconds, fraction = match.groups()
    if minutes is None:
        raise ValueError(f"{value!r} is not a time (give at least hours and minutes)")
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        raise ValueError(f"{value!r} is not a time of day")
    return f"{hours}{minutes}{seconds or '00'}{fraction or ''}"


def _check_text(field: str, value: str) -> str:
    text = value.strip()
    limit = MAX_LENGTH.get(field)
    if limit is not None and len(text) > limit:
        raise ValueError(f"longer than {limit} characters")
    if "\\" in text or any(ord(c) < 0x20 for c in text):
        raise ValueError("backslashes and control characters are not allowed")
    return text


def _check_field(field: str, value: str) -> str:
    """One field, cleaned; raises ValueError saying what is wrong."""
    if not value.strip():
        return ""
    match field:
        case "patient_birth_date" | "scheduled_procedure_step_start_date":
            return _check_date(value)
        case "scheduled_procedure_step_start_time":
            return _check_time(value)
        case "patient_sex":
            sex = value.strip().upper()
            if sex not in ("M", "F", "O"):
                raise ValueError(f"{value!r}: use M, F or O")
            return sex
        case "modality":
            modality = value.strip().upper()
            if not _MODALITY.fullmatch(modality):
                raise ValueError(f"{value!r} is not a modality (e.g. CT, MR, US)")
            return modality
        case "scheduled_station_ae_title":
            try:
                return validate_ae_title(value, "AE title")
            except ConfigError as exc:
                raise ValueError(exc.message.removeprefix("AE title: ")) from None
        case "study_instance_uid":
            try:
                return validate_uid(value, "Study Instance UID")
            except InvalidUIDError as exc:
                raise ValueError(exc.message) from None
        case "patient_name" | "scheduled_performing_physician_name":
            text = _check_text(field, value)
            if any(len(group) > 64 for group in text.split("=")):
                raise ValueError("a name component group is longer than 64 characters")
            return text
    return _check_text(field, value)


def field_errors(fields: OrderFields) -> dict[str, str]:
    """Every invalid field of an order being typed, with what is wrong (empty: valid), in the
    order of the fields."""
    errors: dict[str, str] = {}
    for f in dc_fields(OrderFields):
        try:
            _check_field(f.name, getattr(fields, f.name))
        except ValueError as exc:
            errors[f.name] = str(exc)
    for name in REQUIRED:
        if name not in errors and not getattr(fields, name).strip():
            errors[name] = "required"
    code = (
        fields.requested_procedure_code_value,
        fields.requested_procedure_coding_scheme_designator,
    )
    if any(v.strip() for v in (*code, fields.requested_procedure_code_meaning)):
        for name, value in zip(
            ("requested_procedure_code_value", "requested_procedure_coding_scheme_designator"),
            code,
            strict=True,
        ):
            if not value.strip() and name not in errors:
                errors[name] = "required with a procedure code"
    order = list(OrderFields.__dataclass_fields__)
    return dict(sorted(errors.items(), key=lambda item: order.index(item[0])))


def validate_order(fields: OrderFields) -> OrderFields:
    """The order's fields cleaned (dates and times normalised, codes upper-case ...).

    Raises:
        InvalidOrderError: Every problem, naming each field by its DICOM keyword.
    """
    errors = field_errors(fields)
    if errors:
        message = "; ".join(f"{LABELS[name]}: {text}" for name, text in errors.items())
        raise InvalidOrderError(message, errors)
    cleaned = {
        f.name: _check_field(f.name, getattr(fields, f.name)) for f in dc_fields(OrderFields)
    }
    return OrderFields(**cleaned)


def new_uid() -> str:
    """A new UID under the UUID-derived ``2.25`` root (PS3.5 B.2), as our implementation UID."""
    return str(generate_uid(prefix=None))


def today() -> str:
    """Today's date (local), ``YYYYMMDD``."""
    return datetime.now().strftime("%Y%m%d")


# -- the service -----------------------------------------------------------------------------


class WorklistService:
    """Orders, their MPPS, and the worklist SCP over one index database.

    Args:
        config: The ``[worklist]`` and ``[query]`` settings.
        db: An open database (the node's, the console's); opened from the config otherwise.
    """

    def __init__(self, config: Config, db: pw.Database | None = None) -> None:
        self.config = config
        self.db = db if db is not None else use_database(config.effective_database_url)

    # -- orders ------------------------------------------------------------------------------

    def create(self, fields: OrderFields) -> WorklistOrder:
        """Add an order (scheduled); the Study Instance UID and SPS ID are assigned if empty.

        Raises:
            InvalidOrderError: A field is not valid.
        """
        return order_store.insert_orders(self.db, [self._complete(validate_order(fields))])[0]

    @staticmethod
    def _complete(fields: OrderFields) -> OrderFields:
        if fields.study_instance_uid:
            return fields
        return replace(fields, study_instance_uid=new_uid())

    def get(self, order_id: int) -> WorklistOrder:
        """The order with this id.

        Raises:
            UnknownOrderError: There is none.
        """
        return order_store.get_order(self.db, order_id)

    def edit(
        self, order_id: int, fields: OrderFields | None = None, **changes: str
    ) -> WorklistOrder:
        """Change an order: to ``fields`` if given, then the keyword ``changes``.

        An empty Study Instance UID or SPS ID keeps the current one.

        Raises:
            UnknownOrderError: There is none.
            InvalidOrderError: A new value is not valid, or a field is unknown.
            WorklistError: The order was cancelled.
        """
        current = self.get(order_id)
        if current.cancelled:
            raise WorklistError(f"order {order_id} was cancelled; it can no longer be edited")
        new = fields if fields is not None else current.fields()
        unknown = sorted(set(changes) - set(OrderFields.__dataclass_fields__))
        if unknown:
            raise InvalidOrderError(f"unknown order field(s): {', '.join(unknown)}")
        new = replace(new, **changes)
        if not new.study_instance_uid.strip():
            new = replace(new, study_instance_uid=current.study_instance_uid)
        if not new.scheduled_procedure_step_id.strip():
            new = replace(new, scheduled_procedure_step_id=current.scheduled_procedure_step_id)
        return order_store.update_order(self.db, order_id, validate_order(new))

    def cancel(self, order_id: int) -> WorklistOrder:
        """Cancel an order at the desk: it becomes discontinued and leaves the worklist.

        Raises:
            UnknownOrderError: There is none.
            WorklistError: It is completed already.
        """
        current = self.get(order_id)
        if current.cancelled:
            return current
        if current.status == OrderStatus.COMPLETED:
            raise WorklistError(f"order {order_id} is completed; it cannot be cancelled")
        order_store.set_status(self.db, [order_id], OrderStatus.DISCONTINUED, cancel=True)
        log.info("order %d (%s) cancelled", order_id, current.accession_number)
        return self.get(order_id)

    def mark_arrived(self, order_id: int) -> WorklistOrder:
        """The patient is here: a scheduled order becomes arrived.

        Raises:
            UnknownOrderError: There is none.
            WorklistError: It is past scheduled.
        """
        current = self.get(order_id)
        if current.status == OrderStatus.ARRIVED:
            return current
        if current.status != OrderStatus.SCHEDULED or current.cancelled:
            raise WorklistError(f"order {order_id} is {current.status.value}, not scheduled")
        order_store.set_status(self.db, [order_id], OrderStatus.ARRIVED)
        return self.get(order_id)

    def list_orders(
        self, flt: WorklistFilter | None = None, *, limit: int = 0, offset: int = 0
    ) -> list[WorklistOrder]:
        """Orders matching ``flt`` (every order when None), by scheduled start."""
        return order_store.list_orders(
            self.db,
            flt or WorklistFilter(),
            case_sensitive_names=self.config.query_case_sensitive_names,
            limit=limit,
            offset=offset,
        )

    # -- the tech desk ---------------------------------------------------------------------

    def board(self, flt: WorklistFilter | None = None) -> WorklistBoard:
        """The worklist pane: orders (today's when ``flt`` is None) with their progress and
        flags, and the studies of the same dates that match no order.

        Cost: a fixed number of queries whatever the number of order_store.
        """
        if flt is None:
            flt = WorklistFilter(date_from=today(), date_to=today())
        found = self.list_orders(flt)
        return WorklistBoard(
            orders=tuple(order_progress(self.db, found)),
            unmatched_studies=tuple(unmatched_studies(self.db, flt)),
        )

    def progress(self, found: Iterable[WorklistOrder]) -> list[OrderProgress]:
        """The progress of these orders (images, MPPS, flags), in the same order."""
        return order_progress(self.db, list(found))

    def performed_steps(self, order_id: int | None = None) -> list[PerformedStepInfo]:
        """MPPS instances (of one order, or all), latest first."""
        return mpps_store.steps_info(self.db, None if order_id is None else [order_id])

    def settle(self, now: datetime | None = None) -> dict[int, OrderStatus]:
        """Move orders without MPPS along as their images arrive (the node calls this often).

        See :func:`tui_pacs.store.worklist_board.settle_orders`; ``[worklist] complete_after``
        says how long after the last image an order is completed.
        """
        changed = settle_orders(
            self.db, now or utcnow(), float(self.config.worklist_complete_after)
        )
        for order_id, status in changed.items():
            log.info("order %d is %s (images received, no MPPS)", order_id, status.value)
        return changed

    # -- CSV import --------------------------------------------------------------------------

    def import_csv(self, source: Path | str) -> CsvImportReport:
        """Import orders from a CSV file whose header row names DICOM keywords.

        Good rows are imported (in one transaction); bad rows are reported by line number
        (the header is line 1) with every reason.

        Raises:
            WorklistError: The file cannot be read, or its header is not usable.
        """
        if isinstance(source, Path):
            try:
                text = source.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise WorklistError(f"{source}: cannot be read: {exc}") from exc
        else:
            text = source.removeprefix("\ufeff")
        good, errors = parse_csv(text)
        imported = order_store.insert_orders(self.db, [self._complete(f) for f in good])
        log.info(
            "worklist import: %d order(s) imported, %d row(s) refused", len(imported), len(errors)
        )
        return CsvImportReport(tuple(imported), tuple(errors))

    # -- DICOM services (the node) -----------------------------------------------------------

    def mwl_options(self) -> MwlOptions:
        """Worklist matching options from the ``[query]`` settings."""
        cfg = self.config
        return MwlOptions(
            case_sensitive_names=cfg.query_case_sensitive_names,
            combined_datetime=cfg.query_combined_datetime != "never",
            max_results=cfg.query_max_results,
        )

    def mwl_find(self, request: FindRequest) -> MwlMatches:
        """The C-FIND SCP's ``mwl_find`` callable: the orders a worklist query matches."""
        return find_worklist(request.identifier, self.mwl_options(), self.db)

    def create_step(self, request: ProcedureStepRequest) -> str:
        """The MPPS SCP's N-CREATE: store the step, move its orders to in progress."""
        uid = request.sop_instance_uid or new_uid()
        try:
            uid = validate_uid(uid, "Affected SOP Instance UID")
        except InvalidUIDError as exc:
            raise InvalidProcedureStepError(exc.message) from None
        result = mpps_store.create_step(self.db, uid, request.attributes, request.calling_ae_title)
        if result.order_ids:
            log.info("MPPS %s performs order(s) %s", uid, ", ".join(map(str, result.order_ids)))
        return uid

    def update_step(self, request: ProcedureStepRequest) -> None:
        """The MPPS SCP's N-SET: update the step; its orders follow its status."""
        mpps_store.update_step(self.db, request.sop_instance_uid, request.attributes)

    def handlers(self, authorize: AuthorizeCallable | None = None) -> list[tuple]:
        """Event bindings of the MPPS SCP (the worklist C-FIND goes through the C-FIND SCP).

        Args:
            authorize: Decides who may use it (default: everyone).
        """
        from tui_pacs.net.mpps_scp import mpps_handlers
        from tui_pacs.net.scp import allow_all

        return mpps_handlers(self.create_step, self.update_step, authorize or allow_all)

    def contexts(self) -> list[PresentationContext]:
        """Presentation contexts of the worklist and MPPS SCPs."""
        from tui_pacs.net.mpps_scp import mpps_contexts
        from tui_pacs.net.mwl_scp import mwl_contexts

        return [*mwl_contexts(), *mpps_contexts()]


def parse_csv(text: str) -> tuple[list[OrderFields], list[CsvRowError]]:
    """Orders from CSV text (header row of DICOM keywords): the valid ones and the errors.

    Raises:
        WorklistError: The header names unknown columns or lacks a required one.
    """
    sample = text.split("\n", 1)[0]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    if sample.count("\t") > max(sample.count(";"), sample.count(",")):
        delimiter = "\t"
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise WorklistError(
            "the CSV file is empty (expected a header row of DICOM keywords)"
        ) from None
    unknown = [h for h in header if h and h not in CSV_COLUMNS]
    if unknown:
        raise WorklistError(
            f"line 1: unknown column(s) {', '.join(unknown)}; use DICOM keywords: "
            + ", ".join(CSV_COLUMNS)
        )
    seen = [h for h in header if h]
    dupes = sorted({h for h in seen if seen.count(h) > 1})
    if dupes:
        raise WorklistError(f"line 1: column(s) named twice: {', '.join(dupes)}")
    missing = [LABELS[name] for name in REQUIRED if LABELS[name] not in header]
    if missing:
        raise WorklistError(f"line 1: required column(s) missing: {', '.join(missing)}")
    good: list[OrderFields] = []
    errors: list[CsvRowError] = []
    last = reader.line_num
    for row in reader:
        # A quoted value may span lines: a row is reported by the line it starts on.
        line, last = last + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            errors.append(CsvRowError(line, (f"{len(row)} values for {len(header)} columns",)))
            continue
        values: Mapping[str, str] = {
            CSV_COLUMNS[name]: cell for name, cell in zip(header, row, strict=False) if name
        }
        fields = OrderFields(**values)
        try:
            good.append(validate_order(fields))
        except InvalidOrderError as exc:
            reasons = tuple(f"{LABELS[n]}: {t}" for n, t in exc.field_errors.items())
            errors.append(CsvRowError(line, reasons))
    return good, errors
