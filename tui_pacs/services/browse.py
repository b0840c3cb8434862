"""Browse the local archive: study pages, series, instances, the tag tree of one instance, changes.

One call per thing the console shows; each opens (and closes) its own connection on the calling
thread, so the console can call them from thread workers. Results are ``model`` dataclasses and,
for the tag tree, pydicom data sets read from the archive.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import peewee as pw

from tui_pacs.config import Config
from tui_pacs.errors import DatasetError, StoreError
from tui_pacs.model import (
    ChangeEvent,
    InstanceSummary,
    SeriesSummary,
    StudyFilter,
    StudyPage,
    StudySort,
    StudySummary,
    TagNode,
)
from tui_pacs.store import browse as store
from tui_pacs.store.db import thread_connection, use_database

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset
    from pydicom.tag import BaseTag

# pydicom is imported where an instance is read, not here: the console starts faster without it
# (it draws the study list first; the tag tree comes later, in a worker).

log = logging.getLogger(__name__)

#: Longest value text shown for one element.
MAX_VALUE_TEXT = 120
#: Values of these VRs are binary: shown by their length only.
_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN", "OB or OW", "US or OW"}

#: Kinds of change feed rows that change what the study list shows.
STUDY_CHANGE_KINDS = frozenset(
    {"study.created", "instance.stored", "study.updated", "study.deleted"}
)


class Browser:
    """The local archive as the console browses it.

    Args:
        config: Storage folder and database URL come from here.
        db: An already open database (tests); opened from the config otherwise.
    """

    def __init__(self, config: Config, db: pw.Database | None = None) -> None:
        self.config = config
        self.db = db or use_database(config.effective_database_url)

    def study_page(
        self,
        flt: StudyFilter,
        *,
        sort: StudySort = StudySort.STUDY_DATE,
        descending: bool = True,
        after: tuple[object, ...] | None = None,
        before: tuple[object, ...] | None = None,
        last: bool = False,
        limit: int = 100,
    ) -> StudyPage:
        """One page of matching studies (see :func:`tui_pacs.store.browse.study_page`)."""
        with thread_connection(self.db):
            return store.study_page(
                self.db,
                flt,
                sort=sort,
                descending=descending,
                after=after,
                before=before,
                last=last,
                limit=limit,
            )

    def count_studies(self, flt: StudyFilter) -> int:
        """How many studies match ``flt``."""
        with thread_connection(self.db):
            return store.count_studies(self.db, flt)

    def study(self, study_instance_uid: str) -> StudySummary | None:
        """One study by UID, or None."""
        with thread_connection(self.db):
            return store.study_summary(study_instance_uid)

    def series(self, study_instance_uid: str) -> list[SeriesSummary]:
        """Series of a study."""
        with thread_connection(self.db):
            return store.series_of(study_instance_uid)

    def instances(self, series_instance_uid: str) -> list[InstanceSummary]:
        """Instances of a series."""
        with thread_connection(self.db):
            return store.instances_of(series_instance_uid)

    def read_instance(self, sop_instance_uid: str) -> Dataset:
        """The archived data set of an instance (large binary values are read on demand).

        Raises:
            StoreError: The instance is not in the index or its file is missing.
            DatasetError: The file cannot be parsed.
        """
        from pydicom import dcmread
        from pydicom.errors import InvalidDicomError

        with thread_connection(self.db):
            rel = store.instance_path(sop_instance_uid)
        if rel is None:
            raise StoreError(f"instance {sop_instance_uid} is not in the archive", "Not found")
        path = Path(self.config.storage_path) / rel
        try:
            return dcmread(path, defer_size=4096)
        except FileNotFoundError as exc:
            raise StoreError(
                f"the file of instance {sop_instance_uid} is missing: {path}", "Missing file"
            ) from exc
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            raise DatasetError(f"{path}: cannot be read: {exc}") from exc

    def tag_tree(self, sop_instance_uid: str) -> list[TagNode]:
        """The full tag tree (File Meta Information first) of an archived instance."""
        ds = self.read_instance(sop_instance_uid)
        nodes: list[TagNode] = []
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            nodes.extend(tag_nodes(meta))
        nodes.extend(tag_nodes(ds))
        return nodes

    def last_change_id(self) -> int:
        """Id of the newest change feed row."""
        with thread_connection(self.db):
            return store.last_change_id()

    def changes_since(self, last_id: int, limit: int = 1000) -> list[ChangeEvent]:
        """Change feed rows after ``last_id``, oldest first."""
        with thread_connection(self.db):
            return store.changes_since(last_id, limit)


def _binary_text(length: int | None) -> str:
    if length is None or length == 0xFFFFFFFF:
        return "<binary, undefined length>"
    return f"<{length} bytes>"


def _value_text(elem: DataElement) -> str:
    from pydicom.uid import UID

    vr = str(elem.VR)
    try:
        value = elem.value
    except Exception as exc:  # a malformed value must not hide the rest of the tree
        return f"<cannot decode: {exc}>"
    if vr in _BINARY_VRS or isinstance(value, bytes):
        return _binary_text(len(value) if isinstance(value, bytes) else None)
    if value is None or value == "":
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    text = "".join(c if c.isprintable() else " " for c in text)
    if vr == "UI" and value:
        name = UID(str(value)).name
        if name and name != str(value):
            text = f"{text} ({name})"
    if len(text) > MAX_VALUE_TEXT:
        text = text[: MAX_VALUE_TEXT - 1] + "…"
    return text


def _raw_binary(ds: Dataset, tag: BaseTag) -> TagNode | None:
    """A binary element not yet decoded (pixel data ...) described without reading its value."""
    from pydicom.datadict import dictionary_description, dictionary_VR, keyword_for_tag
    from pydicom.dataelem import RawDataElement

    raw = ds.get_item(tag)
    if not isinstance(raw, RawDataElement):
        return None
    vr = raw.VR
    if vr is None:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            return None
    if vr not in _BINARY_VRS:
        return None
    keyword = keyword_for_tag(tag) or ""
    name = dictionary_description(tag) if keyword else "Private or unknown binary element"
    return TagNode(int(tag), keyword, name, str(vr), _binary_text(raw.length))


def tag_nodes(ds: Dataset) -> list[TagNode]:
    """The elements of ``ds`` as a tree: sequences hold their items, items their elements.

    Binary values that have not been read yet (pixel data of a file read with ``defer_size``)
    are described by their length and never loaded.
    """
    nodes: list[TagNode] = []
    for tag in list(ds.keys()):
        binary = _raw_binary(ds, tag)
        if binary is not None:
            nodes.append(binary)
            continue
        try:
            elem = ds[tag]
        except Exception as exc:  # one undecodable element must not hide the rest
            nodes.append(TagNode(int(tag), "", "Undecodable element", "", f"<{exc}>"))
            continue
        vr = str(elem.VR)
        keyword = elem.keyword or ""
        name = elem.name if not elem.is_private else f"Private: {elem.name}"
        if vr == "SQ":
            items = tuple(
                TagNode(0, f"Item {i}", f"Item {i}", "", "", tuple(tag_nodes(item)))
                for i, item in enumerate(elem.value or (), start=1)
            )
            nodes.append(TagNode(int(elem.tag), keyword, name, vr, f"{len(items)} item(s)", items))
        else:
            nodes.append(TagNode(int(elem.tag), keyword, name, vr, _value_text(elem)))
    return nodes


def _tag_query(text: str) -> int | None:
    """The tag a search names: ``0010,0010``, ``(0010,0010)``, ``00100010`` or ``0x00100010``."""
    cleaned = text.strip().strip("()").replace(",", "").replace(" ", "")
    cleaned = cleaned.removeprefix("0x").removeprefix("0X")
    if len(cleaned) == 8:
        try:
            return int(cleaned, 16)
        except ValueError:
            return None
    return None


def search_tags(nodes: list[TagNode] | tuple[TagNode, ...], text: str) -> list[TagNode]:
    """The tree pruned to elements whose keyword, name, tag or value matches ``text``.

    A matching sequence keeps all its items; a sequence or item keeps the children that match
    (so the path to every match stays visible). Case does not matter; a DICOM keyword from the
    dictionary (``PatientName``) also matches its tag.
    """
    from pydicom.tag import Tag

    query = text.strip()
    if not query:
        return list(nodes)
    needle = query.casefold()
    tag = _tag_query(query)
    if tag is None:
        try:
            known: BaseTag | None = Tag(query) if query.isidentifier() else None
        except (ValueError, TypeError, OverflowError):
            known = None
        tag = int(known) if known is not None else None

    def hit(node: TagNode) -> bool:
        if tag is not None and node.tag == tag and node.tag:
            return True
        return (
            needle in node.keyword.casefold()
            or needle in node.name.casefold()
            or needle in node.value.casefold()
            or (bool(node.tag) and needle.strip("()") in node.tag_text.casefold())
        )

    def prune(items: tuple[TagNode, ...] | list[TagNode]) -> list[TagNode]:
        kept: list[TagNode] = []
        for node in items:
            if hit(node) and node.tag:
                kept.append(node)
                continue
            children = prune(node.children)
            if children:
                kept.append(
                    TagNode(node.tag, node.keyword, node.name, node.vr, node.value, tuple(children))
                )
        return kept

    return prune(nodes)


def date_range(preset: str, today: date | None = None) -> tuple[str, str]:
    """The ``YYYYMMDD`` range of a study date preset: any, today, yesterday, last-7-days.

    Raises:
        ValueError: Unknown preset.
    """
    day = today or date.today()
    fmt = "%Y%m%d"
    match preset:
        case "any":
            return "", ""
        case "today":
            return day.strftime(fmt), day.strftime(fmt)
        case "yesterday":
            prev = day - timedelta(days=1)
            return prev.strftime(fmt), prev.strftime(fmt)
        case "last-7-days":
            return (day - timedelta(days=6)).strftime(fmt), day.strftime(fmt)
        case "last-30-days":
            return (day - timedelta(days=29)).strftime(fmt), day.strftime(fmt)
    raise ValueError(f"unknown date preset {preset!r}")


def parse_date(text: str) -> str:
    """A date a person typed (``YYYYMMDD``, ``YYYY-MM-DD`` or ``DD.MM.YYYY``) as ``YYYYMMDD``.

    Empty text gives an empty string (an open end of a range).

    Raises:
        ValueError: Not a valid date.
    """
    raw = text.strip()
    if not raw:
        return ""
    if len(raw) == 10 and raw[2] == "." and raw[5] == ".":
        raw = raw[6:] + raw[3:5] + raw[:2]
    digits = raw.replace("-", "").replace("/", "")
    if len(digits) != 8 or not digits.isdigit():
        raise ValueError(f"{text!r} is not a date (use YYYY-MM-DD)")
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date: {exc}") from None
    return digits
