"""Look at a node's index and archive from outside the node and check that they agree.

Plain SQL over a DB-API connection (sqlite3 read-only, or psycopg2), so a test can read the index
while the node writes it, without binding the Peewee models in the test process.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID

INCOMING = ".incoming"


@dataclass(frozen=True, slots=True)
class IndexedInstance:
    """One row of the instance table, as the tests need it."""

    sop_instance_uid: str
    #: Archive-relative path of the file.
    path: str
    checksum: str
    size: int
    transfer_syntax_uid: str


def connect(database_url: str) -> Any:
    """A DB-API connection to the index at ``database_url`` (SQLite opened read-only)."""
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    import psycopg2

    return psycopg2.connect(database_url.replace("postgres://", "postgresql://", 1))


def _query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    conn = connect(database_url)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        rows = list(cur.fetchall())
        conn.rollback()
        return rows
    finally:
        conn.close()


def count_instances(database_url: str) -> int:
    """Rows in the instance table; 0 while the node has not created its schema yet."""
    try:
        return int(_query(database_url, "SELECT COUNT(*) FROM instance")[0][0])
    except Exception as exc:  # no database file or no table yet
        if (
            "no such table" in str(exc)
            or "unable to open" in str(exc)
            or "does not exist" in str(exc)
        ):
            return 0
        raise


def indexed_instances(database_url: str) -> dict[str, IndexedInstance]:
    """Every indexed instance by SOP Instance UID."""
    rows = _query(
        database_url,
        "SELECT sop_instance_uid, path, checksum, size, transfer_syntax_uid FROM instance",
    )
    return {r[0]: IndexedInstance(r[0], r[1], r[2], int(r[3]), r[4]) for r in rows}


def row_counts(database_url: str) -> dict[str, int]:
    """Rows in each level of the hierarchy."""
    return {
        table: int(_query(database_url, f"SELECT COUNT(*) FROM {table}")[0][0])
        for table in ("patient", "study", "series", "instance")
    }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temp_files(archive: Path) -> list[Path]:
    """Temporary files left in the archive's incoming folders."""
    return sorted((archive / INCOMING).rglob("*.tmp")) if (archive / INCOMING).exists() else []


def archive_files(archive: Path) -> list[Path]:
    """Every file in the archive proper (the incoming folders excluded)."""
    return sorted(
        p
        for p in archive.rglob("*")
        if p.is_file() and INCOMING not in p.relative_to(archive).parts
    )


#: Rows whose parent is gone, or parents left without children.
_ORPHANS = {
    "instance without series": "SELECT i.sop_instance_uid FROM instance i "
    "LEFT JOIN series s ON s.id = i.series_id WHERE s.id IS NULL",
    "series without instances": "SELECT s.series_instance_uid FROM series s "
    "LEFT JOIN instance i ON i.series_id = s.id WHERE i.id IS NULL",
    "series without study": "SELECT s.series_instance_uid FROM series s "
    "LEFT JOIN study t ON t.id = s.study_id WHERE t.id IS NULL",
    "study without series": "SELECT t.study_instance_uid FROM study t "
    "LEFT JOIN series s ON s.study_id = t.id WHERE s.id IS NULL",
    "study without patient": "SELECT t.study_instance_uid FROM study t "
    "LEFT JOIN patient p ON p.id = t.patient_id WHERE p.id IS NULL",
    "patient without studies": "SELECT p.patient_id FROM patient p "
    "LEFT JOIN study t ON t.patient_id = p.id WHERE t.id IS NULL",
}

#: Stored counts that disagree with the rows below them.
_BAD_COUNTS = {
    "series instance count": "SELECT s.series_instance_uid FROM series s "
    "WHERE s.number_of_series_related_instances <> "
    "(SELECT COUNT(*) FROM instance i WHERE i.series_id = s.id)",
    "study instance count": "SELECT t.study_instance_uid FROM study t "
    "WHERE t.number_of_study_related_instances <> "
    "(SELECT COUNT(*) FROM instance i JOIN series s ON s.id = i.series_id "
    "WHERE s.study_id = t.id)",
    "study series count": "SELECT t.study_instance_uid FROM study t "
    "WHERE t.number_of_study_related_series <> "
    "(SELECT COUNT(*) FROM series s WHERE s.study_id = t.id)",
    "patient instance count": "SELECT p.patient_id FROM patient p "
    "WHERE p.number_of_patient_related_instances <> "
    "(SELECT COUNT(*) FROM instance i JOIN series s ON s.id = i.series_id "
    "JOIN study t ON t.id = s.study_id WHERE t.patient_id = p.id)",
}


@dataclass
class AuditReport:
    """What disagrees between the index and the archive."""

    instances: dict[str, IndexedInstance]
    missing_files: list[str] = field(default_factory=list)
    bad_checksums: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    bad_counts: list[str] = field(default_factory=list)
    temp_files: list[Path] = field(default_factory=list)
    #: Archived files no index row points to (a crash between link and commit leaves these).
    unindexed_files: list[Path] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every inconsistency that must never happen (unindexed files aside)."""
        return [
            *(f"index row points to a missing file: {u}" for u in self.missing_files),
            *(f"checksum or size differs: {u}" for u in self.bad_checksums),
            *self.orphans,
            *self.bad_counts,
            *(f"temporary file left: {p}" for p in self.temp_files),
        ]


def audit(archive: Path, database_url: str) -> AuditReport:
    """Check every index row against its file, and the hierarchy against itself."""
    instances = indexed_instances(database_url)
    report = AuditReport(instances)
    for uid, row in instances.items():
        path = archive / row.path
        if not path.is_file():
            report.missing_files.append(uid)
        elif path.stat().st_size != row.size or sha256_file(path) != row.checksum:
            report.bad_checksums.append(uid)
    for what, sql in _ORPHANS.items():
        report.orphans.extend(f"{what}: {r[0]}" for r in _query(database_url, sql))
    for what, sql in _BAD_COUNTS.items():
        report.bad_counts.extend(f"{what} wrong: {r[0]}" for r in _query(database_url, sql))
    report.temp_files = temp_files(archive)
    indexed_paths = {archive / row.path for row in instances.values()}
    report.unindexed_files = [p for p in archive_files(archive) if p not in indexed_paths]
    return report


def dataset_differences(
    sent: Dataset, archived: Dataset, *, through_dcmtk: bool = False
) -> list[str]:
    """Top-level elements that differ between a sent data set and its archived copy.

    With ``through_dcmtk`` (storescu sent it, or storescp wrote it) the normalisations DCMTK
    applies when it encodes a data set are allowed: group length elements (gggg,0000) and Data
    Set Trailing Padding (FFFC,FFFC) are dropped, and encapsulated Pixel Data is always OB
    (PS3.5 A.4) whatever the file said.
    """
    ts = (
        UID(str(sent.file_meta.TransferSyntaxUID))
        if "TransferSyntaxUID" in sent.file_meta
        else None
    )
    encapsulated = ts is not None and ts.is_encapsulated

    def elements(ds: Dataset) -> dict[int, Any]:
        out = {}
        for elem in ds:
            if through_dcmtk and (elem.tag.element == 0 or elem.tag == 0xFFFCFFFC):
                continue
            out[int(elem.tag)] = elem
        return out

    a, b = elements(sent), elements(archived)
    diffs = []
    for tag in sorted(set(a) | set(b)):
        x, y = a.get(tag), b.get(tag)
        if x is None or y is None:
            diffs.append(
                f"({tag >> 16:04X},{tag & 0xFFFF:04X}) only in "
                + ("archived" if x is None else "sent")
            )
            continue
        if through_dcmtk and encapsulated and tag == 0x7FE00010:
            same = x.value == y.value
        else:
            same = x == y
        if not same:
            diffs.append(
                f"{x.tag} {x.keyword}: sent {str(x.value)[:60]!r}, archived {str(y.value)[:60]!r}"
            )
    return diffs
