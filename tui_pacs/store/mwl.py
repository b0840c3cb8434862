"""The Modality Worklist C-FIND engine (PS3.4 K.6.1): an identifier becomes SQL over the orders.

Matching keys (PS3.4 Table K.6-1) inside the Scheduled Procedure Step Sequence (Scheduled Station
AE Title, Scheduled Procedure Step Start Date and Time, Modality, Scheduled Performing Physician's
Name ...) and at the top level (Patient's Name, Patient ID, Accession Number, Requested Procedure
ID, Study Instance UID ...) follow PS3.4 C.2.2.2: single value, list (backslash), universal, wild
card (``*`` and ``?``; person names without regard to case unless configured otherwise), and
range matching of dates and times. When both a start date and a start time are given they are
matched as one date-time range (C.2.2.2.5.1), as DCMTK's worklist SCP does, unless the ``[query]
combined_datetime`` setting is "never". Sequence matching (C.2.2.2.6) returns, inside the item,
only the keys the item asked for; a zero-length item asks for the whole sequence.

Only active orders (scheduled, arrived, in progress, not cancelled) are listed unless the query
matches on Scheduled Procedure Step Status. Responses are encoded in the query's Specific
Character Set, or in UTF-8 (ISO_IR 192) when a value does not fit it (as the Q/R engine does).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import peewee as pw
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence

from tui_pacs.errors import QueryError
from tui_pacs.model import OrderStatus
from tui_pacs.store.db import is_sqlite, thread_connection
from tui_pacs.store.find_response import CHARSET_VRS, UTF8_TERM, text_encoder
from tui_pacs.store.header import norm_text
from tui_pacs.store.matching import WILDCARDS, Matcher, parse_range
from tui_pacs.store.models import WorklistItem
from tui_pacs.store.worklist import ORDER_BY

log = logging.getLogger(__name__)

SPECIFIC_CHARACTER_SET = 0x00080005
QUERY_RETRIEVE_LEVEL = 0x00080052
SPS_SEQUENCE = 0x00400100
REQUESTED_PROCEDURE_CODE_SEQUENCE = 0x00321064
SPS_STATUS = 0x00400020
SPS_START_DATE = 0x00400002
SPS_START_TIME = 0x00400003

#: Top-level keys the orders hold: tag -> column.
TOP_KEYS: dict[int, str] = {
    0x00100010: "patient_name",
    0x00100020: "patient_id",
    0x00100030: "patient_birth_date",
    0x00100040: "patient_sex",
    0x00080050: "accession_number",
    0x00401001: "requested_procedure_id",
    0x00321060: "requested_procedure_description",
    0x0020000D: "study_instance_uid",
}
#: Keys of the Scheduled Procedure Step Sequence item: tag -> column.
SPS_KEYS: dict[int, str] = {
    0x00400001: "scheduled_station_ae_title",
    SPS_START_DATE: "scheduled_procedure_step_start_date",
    SPS_START_TIME: "scheduled_procedure_step_start_time",
    0x00080060: "modality",
    0x00400006: "scheduled_performing_physician_name",
    0x00400007: "scheduled_procedure_step_description",
    0x00400010: "scheduled_station_name",
    0x00400009: "scheduled_procedure_step_id",
    SPS_STATUS: "status",
}
#: Keys of the Requested Procedure Code Sequence item: tag -> column.
CODE_KEYS: dict[int, str] = {
    0x00080100: "requested_procedure_code_value",
    0x00080102: "requested_procedure_coding_scheme_designator",
    0x00080104: "requested_procedure_code_meaning",
}
#: Person-name columns with their case-folded copy.
NORM_COLUMNS = {
    "patient_name": "patient_name_norm",
    "scheduled_performing_physician_name": "scheduled_performing_physician_name_norm",
}
#: Scheduled Procedure Step Status (0040,0020) terms of each order status.
SPS_STATUS_TERMS: dict[OrderStatus, str] = {
    OrderStatus.SCHEDULED: "SCHEDULED",
    OrderStatus.ARRIVED: "ARRIVED",
    OrderStatus.IN_PROGRESS: "STARTED",
    OrderStatus.COMPLETED: "COMPLETED",
    OrderStatus.DISCONTINUED: "DISCONTINUED",
}
_STATUS_OF_TERM = {term: status for status, term in SPS_STATUS_TERMS.items()}
_ACTIVE = [s.value for s in OrderStatus if s.active]


@dataclass(frozen=True, slots=True)
class MwlOptions:
    """How a worklist query is matched and answered."""

    case_sensitive_names: bool = False
    combined_datetime: bool = True
    max_results: int = 0


def _value_text(elem: Any) -> str | None:
    """A matching value as text, or None for universal matching (empty or a lone ``*``)."""
    value = elem.value
    if value is None:
        return None
    if isinstance(value, MultiValue | list | tuple):
        text = "\\".join("" if v is None else str(v) for v in value)
    else:
        text = str(value)
    text = text.strip(" \0")
    if elem.VR != "PN":
        text = "\\".join(part.strip(" \0") for part in text.split("\\"))
    if text in ("", "*"):
        return None
    return text


@dataclass(slots=True)
class _Plan:
    """What the identifier asks for: the WHERE terms and the shape of each response."""

    terms: list[Any] = field(default_factory=list)
    #: Top-level requested tags in identifier order, with their VR.
    top: list[tuple[int, str]] = field(default_factory=list)
    #: Tags requested inside the SPS item (None: the whole item).
    sps: list[int] | None = None
    sps_requested: bool = False
    #: Tags requested inside the Requested Procedure Code item (None: the whole item).
    code: list[int] | None = None
    code_requested: bool = False
    status_matched: bool = False
    unsupported: list[int] = field(default_factory=list)


class MwlQuery:
    """One worklist identifier compiled against the orders.

    Raises:
        QueryError: A value cannot be matched (a malformed date range, an unknown status).
    """

    def __init__(self, identifier: Dataset, options: MwlOptions, db: pw.Database) -> None:
        self.identifier = identifier
        self.options = options
        self.db = db
        self.matcher = Matcher(is_sqlite(db), options)
        charset = identifier.get("SpecificCharacterSet")
        if charset is None or charset == "":
            self.charset: list[str] | None = None
        else:
            values = list(charset) if isinstance(charset, MultiValue | list) else [charset]
            self.charset = [str(v).strip() for v in values] or None
        self.plan = _Plan()
        self._compile()

    # -- matching --------------------------------------------------------------------------

    def _text_term(self, column: str, value: str, vr: str) -> Any:
        field = getattr(WorklistItem, column)
        if vr == "PN" and not self.options.case_sensitive_names:
            field = getattr(WorklistItem, NORM_COLUMNS[column])
            value = norm_text(value)
        items = [value] if vr == "PN" else value.split("\\")
        terms = []
        for item in items:
            if any(w in item for w in WILDCARDS):
                terms.append(self.matcher.pattern(field, item))
            else:
                terms.append(field == item)
        out = terms[0]
        for term in terms[1:]:
            out = out | term
        return out

    def _range_term(self, column: str, value: str, vr: str, tag: int) -> Any:
        field = getattr(WorklistItem, column)
        lo, hi = parse_range(value, vr, tag)
        if vr == "DA" and lo is not None and lo == hi:
            return field == lo
        term = field != ""
        if lo is not None:
            term = term & (field >= lo)
        if hi is not None:
            term = term & (field <= hi)
        return term

    def _status_term(self, value: str) -> Any:
        statuses = []
        for term in value.split("\\"):
            status = _STATUS_OF_TERM.get(term.strip().upper())
            if status is None:
                known = ", ".join(SPS_STATUS_TERMS.values())
                raise QueryError(
                    f"(0040,0020) ScheduledProcedureStepStatus: {term!r} is not one of {known}",
                    (SPS_STATUS,),
                )
            statuses.append(status.value)
        self.plan.status_matched = True
        return WorklistItem.status.in_(statuses)

    def _match(self, tag: int, column: str, value: str, vr: str) -> None:
        if tag == SPS_STATUS:
            self.plan.terms.append(self._status_term(value))
        elif vr in ("DA", "TM"):
            self.plan.terms.append(self._range_term(column, value, vr, tag))
        else:
            self.plan.terms.append(self._text_term(column, value, vr))

    def _compile_sps(self, elem: Any) -> None:
        plan = self.plan
        plan.sps_requested = True
        items = elem.value or []
        if not items or len(items[0]) == 0:
            return  # universal: the whole item comes back
        item = items[0]
        plan.sps = [int(sub.tag) for sub in item]
        values: dict[int, str] = {}
        for sub in item:
            tag = int(sub.tag)
            if sub.VR == "SQ":
                if any(len(i) for i in sub.value or []):
                    plan.unsupported.append(tag)
                continue
            text = _value_text(sub)
            if text is None:
                continue
            if tag in SPS_KEYS:
                values[tag] = text
            else:
                plan.unsupported.append(tag)
        date, time = values.get(SPS_START_DATE), values.get(SPS_START_TIME)
        if date is not None and time is not None and self.options.combined_datetime:
            self.plan.terms.append(self._combined(date, time))
            values.pop(SPS_START_DATE)
            values.pop(SPS_START_TIME)
        for tag, text in values.items():
            self._match(tag, SPS_KEYS[tag], text, dictionary_VR(tag))

    def _combined(self, date_value: str, time_value: str) -> Any:
        date_col = WorklistItem.scheduled_procedure_step_start_date
        time_col = WorklistItem.scheduled_procedure_step_start_time
        d_lo, d_hi = parse_range(date_value, "DA", SPS_START_DATE)
        t_lo, t_hi = parse_range(time_value, "TM", SPS_START_TIME)
        term = date_col != ""
        if d_lo is not None:
            term = term & (date_col >= d_lo)
            if t_lo is not None:
                term = term & ((date_col > d_lo) | ((date_col == d_lo) & (time_col >= t_lo)))
        if d_hi is not None:
            term = term & (date_col <= d_hi)
            if t_hi is not None:
                term = term & ((date_col < d_hi) | ((date_col == d_hi) & (time_col <= t_hi)))
        return term

    def _compile_code(self, elem: Any) -> None:
        plan = self.plan
        plan.code_requested = True
        items = elem.value or []
        if not items or len(items[0]) == 0:
            return
        plan.code = [int(sub.tag) for sub in items[0]]
        for sub in items[0]:
            tag = int(sub.tag)
            text = _value_text(sub) if sub.VR != "SQ" else None
            if text is None:
                continue
            if tag in CODE_KEYS:
                self.plan.terms.append(self._text_term(CODE_KEYS[tag], text, sub.VR))
            else:
                plan.unsupported.append(tag)

    def _compile(self) -> None:
        plan = self.plan
        for elem in self.identifier:
            tag = int(elem.tag)
            if tag in (SPECIFIC_CHARACTER_SET, QUERY_RETRIEVE_LEVEL) or elem.tag.group == 0:
                continue  # QueryRetrieveLevel: some SCUs send it; the worklist has no levels
            plan.top.append((tag, elem.VR))
            if tag == SPS_SEQUENCE:
                self._compile_sps(elem)
                continue
            if tag == REQUESTED_PROCEDURE_CODE_SEQUENCE:
                self._compile_code(elem)
                continue
            if elem.VR == "SQ":
                if any(len(i) for i in elem.value or []):
                    plan.unsupported.append(tag)
                continue
            text = _value_text(elem)
            if text is None:
                continue
            if tag in TOP_KEYS:
                self._match(tag, TOP_KEYS[tag], text, dictionary_VR(tag))
            else:
                plan.unsupported.append(tag)
        if not plan.status_matched:
            plan.terms.append(
                WorklistItem.status.in_(_ACTIVE) & WorklistItem.cancelled_at.is_null()
            )

    # -- results ---------------------------------------------------------------------------

    def select(self) -> pw.Select:
        """The orders that match, by scheduled start."""
        condition = self.plan.terms[0]
        for term in self.plan.terms[1:]:
            condition = condition & term
        return WorklistItem.select().where(condition).order_by(*ORDER_BY)

    def _value(self, row: WorklistItem, column: str) -> str:
        if column == "status":
            return SPS_STATUS_TERMS[OrderStatus(row.status)]
        return str(getattr(row, column) or "")

    def _item(self, row: WorklistItem, keys: dict[int, str], wanted: list[int] | None) -> Dataset:
        item = Dataset()
        for tag in wanted if wanted is not None else list(keys):
            vr = dictionary_VR(tag)
            column = keys.get(tag)
            value: Any = self._value(row, column) if column else ""
            if vr == "SQ":
                value = DicomSequence([])
            item.add_new(tag, vr, value if value != "" else None)
        return item

    def response(self, row: WorklistItem) -> Dataset:
        """The response identifier of one matching order (only the requested keys)."""
        rsp = Dataset()
        for tag, vr in self.plan.top:
            if tag == SPS_SEQUENCE:
                rsp.add_new(tag, vr, DicomSequence([self._item(row, SPS_KEYS, self.plan.sps)]))
            elif tag == REQUESTED_PROCEDURE_CODE_SEQUENCE:
                has_code = bool(row.requested_procedure_code_value)
                items = [self._item(row, CODE_KEYS, self.plan.code)] if has_code else []
                rsp.add_new(tag, vr, DicomSequence(items))
            elif tag in TOP_KEYS:
                value = self._value(row, TOP_KEYS[tag])
                rsp.add_new(tag, vr, value or None)
            elif vr == "SQ":
                rsp.add_new(tag, vr, DicomSequence([]))
            else:
                rsp.add_new(tag, vr, None)
        self._set_charset(rsp)
        return rsp

    def _set_charset(self, rsp: Dataset) -> None:
        encode = text_encoder(self.charset or ())
        try:
            for elem in _text_elements(rsp):
                encode(str(elem.value), elem.VR)
        except UnicodeEncodeError:
            rsp.SpecificCharacterSet = UTF8_TERM
            return
        if self.charset:
            rsp.SpecificCharacterSet = self.charset if len(self.charset) > 1 else self.charset[0]


def _text_elements(ds: Dataset) -> Iterator[Any]:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or []:
                yield from _text_elements(item)
        elif elem.VR in CHARSET_VRS and elem.value not in (None, ""):
            yield elem


class MwlMatches:
    """The matches of one worklist query, as the C-FIND SCP streams them (``FindMatches``).

    Attributes:
        warning: A matching value of an optional key was ignored (Pending 0xFF01).
        limit: The result cap (0: none).
        truncated: More orders matched than ``limit``.
    """

    def __init__(self, query: MwlQuery) -> None:
        self.query = query
        self.limit = query.options.max_results
        self.warning = bool(query.plan.unsupported)
        self.truncated = False
        if query.plan.unsupported:
            log.info(
                "MWL query: no matching on %s (returned empty)",
                ", ".join(keyword_for_tag(t) or f"{t:08X}" for t in query.plan.unsupported),
            )

    def __iter__(self) -> Iterator[Dataset]:
        select = self.query.select()
        if self.limit:
            select = select.limit(self.limit + 1)
        with thread_connection(self.query.db):
            rows = list(select)
        if self.limit and len(rows) > self.limit:
            rows = rows[: self.limit]
            self.truncated = True
        for row in rows:
            yield self.query.response(row)

    def close(self) -> None:
        """Nothing to release: the matches are read in one go (worklists are small)."""


def find_worklist(identifier: Dataset, options: MwlOptions, db: pw.Database) -> MwlMatches:
    """Compile a worklist identifier and return its matches.

    Raises:
        QueryError: A value cannot be matched.
    """
    return MwlMatches(MwlQuery(identifier, options, db))
