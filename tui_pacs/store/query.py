"""The C-FIND engine: a Query/Retrieve identifier becomes one SQL query and a stream of matches.

Matching follows PS3.4 C.2.2.2: single value, list of UIDs, universal (zero length or a lone
``*``), wildcard (``*`` and ``?``; person names without regard to case unless configured
otherwise), range matching of dates and times including open ranges, and combined date-time
matching (C.2.2.2.5.1) when negotiated or configured. The identifier is checked against the
hierarchy (PS3.4 C.4.1.2.1 / C.4.1.3.1): a missing or invalid Query/Retrieve Level, keys below it,
or (baseline, non-relational) missing unique keys of the levels above raise
:class:`~tui_pacs.errors.IdentifierMismatchError`; a value that cannot be matched (a malformed
date range ...) raises :class:`~tui_pacs.errors.QueryError`.

The SQL selects only the columns the response needs, joins only the tables it needs, and matches
with ``=``, ``IN``, ranges and prefix ``GLOB``/``LIKE`` patterns that the indexes serve. Rows are
streamed from the database cursor (a server-side cursor on PostgreSQL), never loaded all at once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import peewee as pw
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from tui_pacs.errors import IdentifierMismatchError, QueryError
from tui_pacs.store.db import is_sqlite, thread_connection
from tui_pacs.store.find_response import CHARSET_VRS, Column, ResponseBuilder
from tui_pacs.store.matching import WILDCARDS, Matcher, all_of, tag_text
from tui_pacs.store.qr_keys import (
    DATE_TIME_PAIRS,
    GLOBAL_TAGS,
    INSTANCE_AVAILABILITY,
    KEYS,
    MODEL_LEVELS,
    QUERY_RETRIEVE_LEVEL,
    RETRIEVE_AE_TITLE,
    SPECIFIC_CHARACTER_SET,
    TABLES,
    UNIQUE_KEYS,
    InformationModel,
    Key,
    Level,
)

log = logging.getLogger(__name__)

#: Rows fetched from a server-side cursor per round trip.
FETCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """How a query is matched and answered.

    Attributes:
        case_sensitive_names: Match person names case-sensitively.
        combined_datetime: Combine date and time ranges into one date-time range (C.2.2.2.5.1).
        relational: Relational queries were negotiated: unique keys of the levels above may be
            missing or hold several values (PS3.4 C.4.1.2.2.1).
        strict_hierarchy: Keys below the query level are an error; otherwise they are ignored
            (returned empty, the match carrying a warning).
        max_results: Most matches returned (0: no limit).
        retrieve_ae_title: Retrieve AE Title (0008,0054) of every response (PS3.4 C.4.1.1.3.2).
    """

    case_sensitive_names: bool = False
    combined_datetime: bool = False
    relational: bool = False
    strict_hierarchy: bool = True
    max_results: int = 0
    retrieve_ae_title: str = ""


@dataclass(slots=True)
class Requested:
    """One attribute of the identifier: what to match it against and how to return it."""

    tag: int
    vr: str
    key: Key | None
    #: The matching value as text (backslashes separate values); None for universal matching.
    value: str | None


@dataclass(slots=True)
class CompiledQuery:
    """An identifier turned into SQL and a response plan.

    Attributes:
        level: The Query/Retrieve Level.
        model: The information model.
        query: The Peewee select (no limit applied yet).
        columns: Attributes returned from the row, in select order.
        constants: Attributes with the same value in every response (VR, text).
        charset: The query's Specific Character Set terms, or None.
        unsupported: Tags whose matching value was ignored because the index cannot match it
            (PS3.4 C.4.1.1.4: matches then carry Pending status 0xFF01).
        records: Keyword of each selected column, for :meth:`records`.
    """

    level: Level
    model: InformationModel
    query: pw.Select
    columns: list[Column]
    constants: dict[int, tuple[str, str]]
    charset: list[str] | None
    unsupported: list[int] = field(default_factory=list)
    records: list[str] = field(default_factory=list)

    def rows(
        self,
        db: pw.Database,
        *,
        limit: int = 0,
        offset: int = 0,
        order_by: Sequence[pw.Node] = (),
    ) -> Iterator[tuple]:
        """Stream the matching rows (tuples in select order) from the database cursor.

        Close the iterator (or exhaust it) to release the cursor and its transaction.
        """
        query = self.query.clone()
        if order_by:
            query = query.order_by(*order_by)
        if limit:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        return stream_rows(db, query)

    def dicts(self, db: pw.Database, **kwargs: object) -> Iterator[dict[str, object]]:
        """Stream the matches as ``{keyword: value}`` of the selected columns."""
        names = self.records
        for row in self.rows(db, **kwargs):  # type: ignore[arg-type]
            yield dict(zip(names, row, strict=True))

    def response_builder(self, *, implicit_vr: bool, little_endian: bool) -> ResponseBuilder:
        """The builder of response identifiers for the negotiated transfer syntax."""
        return ResponseBuilder(
            self.columns,
            self.constants,
            self.charset,
            implicit_vr=implicit_vr,
            little_endian=little_endian,
        )


class FindStream:
    """The matches of one C-FIND request as response identifiers, streamed from the database.

    Iterate it for the identifiers; afterwards ``truncated`` says whether the result cap cut it
    short. Always :meth:`close` it (it holds a cursor and, on PostgreSQL, a transaction).

    Attributes:
        warning: One or more optional keys could not be matched (answer Pending 0xFF01).
        limit: The result cap applied (0: none).
        truncated: More matches existed than ``limit``.
        sent: Identifiers produced so far.
    """

    def __init__(
        self,
        compiled: CompiledQuery,
        db: pw.Database,
        *,
        implicit_vr: bool = True,
        little_endian: bool = True,
        limit: int = 0,
    ) -> None:
        self.compiled = compiled
        self.warning = bool(compiled.unsupported)
        self.limit = limit
        self.truncated = False
        self.sent = 0
        self.builder = compiled.response_builder(
            implicit_vr=implicit_vr, little_endian=little_endian
        )
        self._db = db
        self._rows: Iterator[tuple] | None = None
        self._connection: AbstractContextManager[pw.Database] | None = None

    def __iter__(self) -> Iterator[Dataset]:
        self._connection = thread_connection(self._db)
        self._connection.__enter__()
        try:
            self._rows = self.compiled.rows(self._db, limit=self.limit + 1 if self.limit else 0)
            build = self.builder.build
            for row in self._rows:
                if self.limit and self.sent >= self.limit:
                    self.truncated = True
                    break
                self.sent += 1
                yield build(row)
        finally:
            self.close()

    def close(self) -> None:
        """Release the cursor, its transaction and this thread's connection."""
        rows, self._rows = self._rows, None
        if rows is not None:
            rows.close()  # type: ignore[attr-defined]
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.__exit__(None, None, None)


def stream_rows(db: pw.Database, query: pw.Select) -> Iterator[tuple]:
    """Yield the rows of ``query`` as tuples straight from the cursor.

    SQLite's cursor already steps through the result. psycopg2's ordinary cursor would fetch the
    whole result first, so PostgreSQL gets a named (server-side) cursor inside a transaction,
    fetching :data:`FETCH_SIZE` rows per round trip.
    """
    sql, params = query.sql()
    if is_sqlite(db):
        cursor = db.execute_sql(sql, params)
        try:
            yield from cursor
        finally:
            cursor.close()
        return
    with db.atomic():
        # psycopg2 refuses named cursors on an autocommit connection (Peewee's mode) unless
        # they are WITH HOLD; inside this transaction and closed before its end, nothing is
        # materialised.
        cursor = db.connection().cursor(name=f"tui_pacs_find_{uuid.uuid4().hex}", withhold=True)
        cursor.itersize = FETCH_SIZE
        try:
            cursor.execute(sql, params)
            yield from cursor
        finally:
            cursor.close()


# -- reading the identifier ----------------------------------------------------------------------


def _element_vr(ds: Dataset, tag: int, elem: object) -> str:
    vr = getattr(elem, "VR", None)
    if not vr or len(vr) != 2:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UN"
    if len(vr) != 2:  # ambiguous dictionary VR such as "US or SS"; any choice suits a zero length
        vr = vr[:2]
    return vr


def _element_text(ds: Dataset, tag: int, vr: str) -> str | None:
    """The value of one identifier attribute as text, or None for universal matching."""
    elem = ds.get_item(tag)
    if vr == "SQ":
        seq = ds[tag].value
        for item in seq or ():
            for sub in item:
                if sub.VR != "SQ" and not sub.is_empty:
                    return "<sequence>"
        return None
    if isinstance(elem, RawDataElement) and vr not in CHARSET_VRS:
        raw = elem.value or b""
        text = raw.decode("ascii", "replace")
    else:
        value = ds[tag].value
        if value is None:
            return None
        if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
            text = "\\".join("" if v is None else str(v) for v in value)
        else:
            text = str(value)
    text = text.strip(" \0")
    if vr != "PN":
        text = "\\".join(part.strip(" \0") for part in text.split("\\"))
    if text == "" or text == "*":
        return None
    return text


def _charset_terms(ds: Dataset) -> list[str] | None:
    if SPECIFIC_CHARACTER_SET not in ds:
        return None
    value = ds[SPECIFIC_CHARACTER_SET].value
    if not value:
        return None
    terms = [str(v).strip() for v in value] if not isinstance(value, str) else [value.strip()]
    return terms if any(terms) else None


def query_level(ds: Dataset, model: InformationModel) -> Level:
    """The Query/Retrieve Level of an identifier, checked against the model.

    Raises:
        IdentifierMismatchError: It is missing, not a level, or not a level of ``model``.
    """
    if QUERY_RETRIEVE_LEVEL not in ds:
        raise IdentifierMismatchError(
            "the identifier has no Query/Retrieve Level (0008,0052)", (QUERY_RETRIEVE_LEVEL,)
        )
    text = _element_text(ds, QUERY_RETRIEVE_LEVEL, "CS") or ""
    try:
        level = Level[text]
    except KeyError:
        raise IdentifierMismatchError(
            f"Query/Retrieve Level {text!r} is not PATIENT, STUDY, SERIES or IMAGE",
            (QUERY_RETRIEVE_LEVEL,),
        ) from None
    if level not in MODEL_LEVELS[model]:
        raise IdentifierMismatchError(
            f"Query/Retrieve Level {text} is not a level of the {model.value} model",
            (QUERY_RETRIEVE_LEVEL,),
        )
    return level


def read_identifier(
    ds: Dataset, model: InformationModel, options: QueryOptions
) -> tuple[Level, list[Requested], list[int]]:
    """Check an identifier against the hierarchy and read its keys.

    Returns:
        The level, the requested attributes (level-less and unknown ones included), and the
        tags of keys below the level that were ignored (only when not strict).

    Raises:
        IdentifierMismatchError: See the module docstring.
        QueryError: An attribute cannot be decoded.
    """
    level = query_level(ds, model)
    requested: list[Requested] = []
    below: list[int] = []
    for element_tag in ds.keys():  # noqa: SIM118 (iterating a Dataset yields elements)
        tag = int(element_tag)
        if tag & 0xFFFF == 0 or tag >> 16 < 0x0008:  # group lengths, command or meta elements
            continue
        key = KEYS.get(tag)
        try:
            vr = key.vr if key else _element_vr(ds, tag, ds.get_item(tag))
            value = _element_text(ds, tag, vr) if tag not in GLOBAL_TAGS else None
        except Exception as exc:
            raise QueryError(f"attribute {tag_text(tag)} cannot be decoded: {exc}", (tag,)) from exc
        if key is not None and key.level > level:
            below.append(tag)
            continue
        requested.append(Requested(tag, vr, key, value))
    if below and options.strict_hierarchy:
        names = ", ".join(tag_text(t) for t in below)
        raise IdentifierMismatchError(
            f"keys below the {level.name} level are not allowed: {names}", tuple(below)
        )
    if not options.relational:
        by_tag = {r.tag: r for r in requested}
        levels = MODEL_LEVELS[model]
        for upper in levels[: levels.index(level)]:
            tag = UNIQUE_KEYS[upper]
            item = by_tag.get(tag)
            value = item.value if item else None
            if value is None or "\\" in value or any(w in value for w in WILDCARDS):
                raise IdentifierMismatchError(
                    f"a {level.name} level query needs a single value of the {upper.name} "
                    f"unique key {tag_text(tag)} (relational queries were not negotiated)",
                    (tag,),
                )
    return level, requested, below


# -- compiling -----------------------------------------------------------------------------------


def compile_query(
    identifier: Dataset,
    model: InformationModel,
    options: QueryOptions,
    db: pw.Database,
) -> CompiledQuery:
    """Check an identifier and turn it into SQL plus a response plan.

    Raises:
        IdentifierMismatchError: The identifier does not fit the model's hierarchy.
        QueryError: A value cannot be matched (malformed date, time or number ...).
    """
    level, requested, below = read_identifier(identifier, model, options)
    matcher = Matcher(is_sqlite(db), options)
    by_tag = {r.tag: r for r in requested}
    conditions: list[pw.Expression] = []
    unsupported: list[int] = list(below)
    levels_needed = {level}
    combined_done: set[int] = set()

    if options.combined_datetime:
        for date_tag, time_tag in DATE_TIME_PAIRS:
            d, t = by_tag.get(date_tag), by_tag.get(time_tag)
            if d is None or t is None or d.value is None or t.value is None:
                continue
            if "-" not in d.value and "-" not in t.value:
                continue  # two single values: independent matching means the same
            assert d.key is not None and t.key is not None
            conditions.append(matcher.combined(d.key, d.value, t.key, t.value))
            levels_needed.add(d.key.level)
            combined_done.update((date_tag, time_tag))

    for item in requested:
        key = item.key
        if key is not None and key.column is not None:
            levels_needed.add(key.level)
        if item.value is None or item.tag in combined_done:
            continue
        if key is None or key.column is None:
            unsupported.append(item.tag)
            continue
        if key.vr in ("DA", "TM"):
            conditions.append(matcher.date_or_time(key, item.value))
        elif key.vr in ("IS", "US"):
            conditions.append(matcher.number(key, item.value))
        else:
            conditions.append(matcher.text(key, item.value))

    base = TABLES[level]
    # Join upwards from the query level to the highest level any key needs.
    top = min(levels_needed)

    fields: list[pw.Field] = []
    positions: dict[str, int] = {}
    columns: list[Column] = []
    constants: dict[int, tuple[str, str]] = {}
    records: list[str] = []
    for item in requested:
        key = item.key
        if item.tag in GLOBAL_TAGS:
            continue
        if key is None or key.column is None:
            constants[item.tag] = (item.vr, "")
            continue
        column = key.field
        assert column is not None
        name = f"{key.level.name}.{key.column}"
        if name not in positions:
            positions[name] = len(fields)
            fields.append(column)
            records.append(key.keyword)
        columns.append(Column(item.tag, key.vr, positions[name]))
    for tag in below:
        vr = KEYS[tag].vr
        constants[tag] = (vr, "")
    if not fields:
        fields.append(base._meta.primary_key)  # type: ignore[attr-defined,arg-type]
        records.append("id")

    constants[QUERY_RETRIEVE_LEVEL] = ("CS", level.name)
    if options.retrieve_ae_title:
        constants[RETRIEVE_AE_TITLE] = ("AE", options.retrieve_ae_title)
    for tag in (INSTANCE_AVAILABILITY,):
        if tag in by_tag:
            constants[tag] = ("CS", "ONLINE")
    for tag in GLOBAL_TAGS - {SPECIFIC_CHARACTER_SET, QUERY_RETRIEVE_LEVEL, RETRIEVE_AE_TITLE}:
        if tag in by_tag and tag not in constants:
            constants[tag] = (by_tag[tag].vr, "")

    query = base.select(*fields)
    for upper in range(level - 1, top - 1, -1):
        parent, child = TABLES[Level(upper)], TABLES[Level(upper + 1)]
        fk = _parent_fk(child)
        query = query.join(parent, on=(fk == parent._meta.primary_key))  # type: ignore[attr-defined]
    if conditions:
        query = query.where(all_of(conditions))
    return CompiledQuery(
        level=level,
        model=model,
        query=query,
        columns=columns,
        constants=constants,
        charset=_charset_terms(identifier),
        unsupported=unsupported,
        records=records,
    )


def _parent_fk(child: type[pw.Model]) -> pw.ForeignKeyField:
    for f in child._meta.sorted_fields:  # type: ignore[attr-defined]
        if isinstance(f, pw.ForeignKeyField):
            return f
    raise AssertionError(child)  # pragma: no cover


def find(
    identifier: Dataset,
    model: InformationModel,
    options: QueryOptions,
    db: pw.Database,
    *,
    implicit_vr: bool = True,
    little_endian: bool = True,
) -> FindStream:
    """Compile a C-FIND identifier and return the stream of its response identifiers.

    Raises:
        IdentifierMismatchError: The identifier does not fit the model's hierarchy.
        QueryError: A value cannot be matched.
    """
    compiled = compile_query(identifier, model, options, db)
    return FindStream(
        compiled,
        db,
        implicit_vr=implicit_vr,
        little_endian=little_endian,
        limit=options.max_results,
    )
