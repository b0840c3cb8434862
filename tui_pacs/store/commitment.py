"""Storage commitment checks: is each requested instance durably in the archive? (PS3.4 J.3)

An instance is committed only when its index row exists with the same SOP Class UID, its file is
where the row says, has the recorded size and hashes to the recorded SHA-256. Anything less is a
failure with the Failure Reason (0008,1197) of PS3.3 C.14.1.1: no such object instance (no row),
class/instance conflict (another SOP class), or processing failure (the file is missing, or its
size or checksum differ).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import peewee as pw

from tui_pacs.model import CommitmentItem
from tui_pacs.store.db import thread_connection
from tui_pacs.store.models import Instance
from tui_pacs.store.worklist import chunks, tuples

log = logging.getLogger(__name__)

#: Failure Reason (0008,1197) values (PS3.3 C.14.1.1).
PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119


def file_checksum(path: Path) -> str:
    """SHA-256 of a file, hex (as the index records it)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _durable(storage: Path, rel: str, size: int, checksum: str) -> str:
    """Empty when the file is intact, else what is wrong with it."""
    path = storage / rel
    try:
        if path.stat().st_size != size:
            return f"{rel}: size differs from the index"
        if file_checksum(path) != checksum:
            return f"{rel}: checksum differs from the index"
    except OSError as exc:
        return f"{rel}: {exc.strerror or exc}"
    return ""


def check_instances(
    db: pw.Database, storage: Path, requested: Sequence[tuple[str, str]]
) -> list[CommitmentItem]:
    """Check each ``(SOP class UID, SOP instance UID)``; same order, with a failure reason each.

    The index is read in a few queries; every file is then read once and hashed.
    """
    uids = sorted({uid for _cls, uid in requested})
    rows: dict[str, tuple[str, str, int, str]] = {}
    with thread_connection(db):
        for part in chunks(uids):
            query = Instance.select(
                Instance.sop_instance_uid,
                Instance.sop_class_uid,
                Instance.path,
                Instance.size,
                Instance.checksum,
            ).where(Instance.sop_instance_uid.in_(list(part)))
            for uid, sop_class, rel, size, checksum in tuples(query):
                rows[uid] = (sop_class, rel, size, checksum)
    verdicts: dict[str, str] = {}
    out: list[CommitmentItem] = []
    for sop_class, uid in requested:
        row = rows.get(uid)
        if row is None:
            reason = NO_SUCH_OBJECT_INSTANCE
        elif row[0] != sop_class:
            reason = CLASS_INSTANCE_CONFLICT
        else:
            if uid not in verdicts:
                verdicts[uid] = _durable(storage, row[1], row[2], row[3])
                if verdicts[uid]:
                    log.error("storage commitment: %s is not intact: %s", uid, verdicts[uid])
            reason = PROCESSING_FAILURE if verdicts[uid] else 0
        out.append(CommitmentItem(sop_class, uid, reason))
    return out
