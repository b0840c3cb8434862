"""PS3.4 C.2.2.2 attribute matching as SQL: single values, lists, wildcards, ranges, date-time.

Each rule becomes an expression the indexes serve: ``=`` and ``IN`` for single values and lists,
``>=``/``<=`` for ranges, and for wildcards ``GLOB`` on SQLite (case-sensitive, and it already
uses ``*`` and ``?``) or ``LIKE`` with the wildcards translated on PostgreSQL; a pattern with a
literal prefix (``DOE*``) is a range scan of the column's index on both. Person names are matched
on their case-folded copy unless case-sensitive matching is configured.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol, cast

import peewee as pw

from tui_pacs.errors import QueryError
from tui_pacs.store.header import norm_text
from tui_pacs.store.qr_keys import KEYS, Key

_DATE = re.compile(r"^\d{8}$")
_TIME = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")
_DATETIME = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?([+-]\d{4})?$")
WILDCARDS = ("*", "?")


class MatchOptions(Protocol):
    """The options matching needs (``QueryOptions`` provides them)."""

    @property
    def case_sensitive_names(self) -> bool:
        """Match person names case-sensitively."""
        ...


def tag_text(tag: int) -> str:
    key = KEYS.get(tag)
    name = f" {key.keyword}" if key else ""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}){name}"


# -- matching ------------------------------------------------------------------------------------


class Matcher:
    """Builds the WHERE clause for one database dialect."""

    def __init__(self, sqlite: bool, options: MatchOptions) -> None:
        self.sqlite = sqlite
        self.options = options

    def pattern(self, node: pw.Node, pattern: str) -> pw.Expression:
        """Wildcard matching (C.2.2.2.4): ``*`` any run of characters, ``?`` one character."""
        if self.sqlite:
            # GLOB is case-sensitive and uses * and ? itself; only [ needs escaping.
            return pw.Expression(node, "GLOB", pattern.replace("[", "[[]"))
        like = (
            pattern.replace("\\", "\\\\")
            .replace("%", "\\%")
            .replace("_", "\\_")
            .replace("*", "%")
            .replace("?", "_")
        )
        return pw.Expression(node, "LIKE", like)

    def text(self, key: Key, value: str) -> pw.Expression:
        """Single value, wildcard or (several backslash-separated values) any-of matching."""
        column = key.field
        if key.vr == "PN" and not self.options.case_sensitive_names and key.norm is not None:
            column = key.norm_field
            value = norm_text(value)
        assert column is not None
        items = [value] if key.vr == "PN" else value.split("\\")
        if key.multi:
            return any_of(self.multi(column, item) for item in items)
        exact = [i for i in items if not any(w in i for w in WILDCARDS)]
        patterns = [i for i in items if i not in exact]
        terms: list[pw.Expression] = []
        if len(exact) == 1:
            terms.append(cast(pw.Expression, column == exact[0]))
        elif exact:
            terms.append(column.in_(exact))
        terms.extend(self.pattern(column, p) for p in patterns)
        return any_of(terms)

    def multi(self, column: pw.Field, item: str) -> pw.Expression:
        """One value against a backslash-joined list column (ModalitiesInStudy ...)."""
        joined = pw.NodeList((pw.Value("\\"), column, pw.Value("\\")), glue=" || ", parens=True)
        return self.pattern(joined, f"*\\{item}\\*")

    def number(self, key: Key, value: str) -> pw.Expression:
        column = key.field
        assert column is not None
        try:
            numbers = [int(item) for item in value.split("\\")]
        except ValueError:
            raise QueryError(
                f"{tag_text(key.tag)}: {value!r} is not an integer", (key.tag,)
            ) from None
        return column == numbers[0] if len(numbers) == 1 else column.in_(numbers)

    def date_or_time(self, key: Key, value: str) -> pw.Expression:
        """Single value or range matching of a DA or TM key (C.2.2.2.5)."""
        column = key.field
        assert column is not None
        lo, hi = parse_range(value, key.vr, key.tag)
        terms = [column != ""]
        if key.vr == "DA" and lo is not None and lo == hi:
            return column == lo
        if lo is not None:
            terms.append(column >= lo)
        if hi is not None:
            terms.append(column <= hi)
        return all_of(terms)

    def combined(
        self, date_key: Key, date_value: str, time_key: Key, time_value: str
    ) -> pw.Expression:
        """Combined date-time range matching of a DA key with its TM key (C.2.2.2.5.1)."""
        date_col, time_col = date_key.field, time_key.field
        assert date_col is not None and time_col is not None
        d_lo, d_hi = parse_range(date_value, "DA", date_key.tag)
        t_lo, t_hi = parse_range(time_value, "TM", time_key.tag)
        terms = [date_col != ""]
        if d_lo is not None:
            terms.append(date_col >= d_lo)  # lets the date index narrow the scan
            if t_lo is not None:
                terms.append((date_col > d_lo) | ((date_col == d_lo) & (time_col >= t_lo)))
        if d_hi is not None:
            terms.append(date_col <= d_hi)
            if t_hi is not None:
                terms.append((date_col < d_hi) | ((date_col == d_hi) & (time_col <= t_hi)))
        return all_of(terms)


def any_of(terms: Iterable[pw.Expression]) -> pw.Expression:
    items = list(terms)
    out = items[0]
    for term in items[1:]:
        out = out | term
    return out


def all_of(terms: Sequence[pw.Expression]) -> pw.Expression:
    out = terms[0]
    for term in terms[1:]:
        out = out & term
    return out


def _time_upper(value: str) -> str:
    """The last instant a partial time designates: ``10`` -> ``105959.999999``."""
    head, _, fraction = value.partition(".")
    head += "5959"[: 6 - len(head)]
    return f"{head}.{fraction.ljust(6, '9')}"


def parse_range(value: str, vr: str, tag: int = 0) -> tuple[str | None, str | None]:
    """Parse a DA, TM or DT matching value into inclusive text bounds.

    ``D`` gives ``(D, D)``, ``D1-D2`` gives ``(D1, D2)``, and the open ranges ``-D2`` and ``D1-``
    give ``(None, D2)`` and ``(D1, None)``. Times are compared as ``HHMMSS.FFFFFF`` text, so an
    upper bound (and a single time) extends to the end of the precision it was given with:
    ``1015`` reaches ``101559.999999``. DT bounds are ``YYYYMMDDHHMMSS.FFFFFF`` text (an offset
    from UTC is ignored) and extend the same way.

    Raises:
        QueryError: The value is not a date, time or date-time, or range of them.
    """
    text = value.strip()
    if vr == "TM":
        text = text.replace(":", "")
    if vr == "DA":
        text = text.replace(".", "") if len(text) == 10 and text.count(".") == 2 else text
    if vr == "DT" and "-" in text:
        # a DT may carry a negative UTC offset: split on the hyphen that separates the range
        lo_text, _, hi_text = _split_dt_range(text)
    elif "-" in text:
        lo_text, _, hi_text = text.partition("-")
    else:
        lo_text, hi_text = text, text
    if lo_text == "" and hi_text == "":
        raise QueryError(f"{tag_text(tag)}: {value!r} is not a range", (tag,))
    lo = _bound(lo_text, vr, upper=False, tag=tag, value=value) if lo_text else None
    hi = _bound(hi_text, vr, upper=True, tag=tag, value=value) if hi_text else None
    return lo, hi


def _split_dt_range(text: str) -> tuple[str, str, str]:
    for index, char in enumerate(text):
        if char != "-":
            continue
        lo, hi = text[:index], text[index + 1 :]
        if (not lo or _DATETIME.match(lo)) and (not hi or _DATETIME.match(hi)):
            return lo, "-", hi
    return text, "", text


def _bound(text: str, vr: str, *, upper: bool, tag: int, value: str) -> str:
    bad = QueryError(f"{tag_text(tag)}: {value!r} is not a valid {vr} value or range", (tag,))
    if vr == "DA":
        if not _DATE.match(text):
            raise bad
        return text
    if vr == "TM":
        if not _TIME.match(text):
            raise bad
        return _time_upper(text) if upper else text
    match = _DATETIME.match(text)
    if not match:
        raise bad
    text = text[: match.start(8)] if match.group(8) else text
    date, time = text[:8], text[8:]
    if upper:
        date = date + "1231"[len(date) - 4 :] if len(date) < 8 else date
        time = _time_upper(time) if time else "235959.999999"
    else:
        date = date + "0101"[len(date) - 4 :] if len(date) < 8 else date
    return date + time
