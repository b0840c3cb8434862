"""The file archive: one file per SOP instance, written atomically, named by validated UIDs.

Layout: ``<storage>/<2 hex of sha1(study uid)>/<study uid>/<series uid>/<sop instance uid>.dcm``.
New files are written under ``<storage>/.incoming/<host>-<pid>/``, fsynced, then renamed into
place by the index writer, so a crash leaves either the whole file or nothing in the archive.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tui_pacs.errors import InvalidUIDError, StoreError
from tui_pacs.store.heartbeat import pid_alive

log = logging.getLogger(__name__)

# PS3.5 9.1: digits and dots, at most 64 characters. Leading zeros inside a component are not
# conformant but real modalities send them, so they are tolerated; anything that could escape a
# folder (separators, "..", empty components) is not.
_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
INCOMING = ".incoming"


def validate_uid(value: object, name: str = "UID") -> str:
    """Return ``value`` as a clean UID or raise :class:`InvalidUIDError`.

    Trailing NUL and space padding (PS3.5 6.2) is removed first.
    """
    if not isinstance(value, str):
        raise InvalidUIDError(f"{name} is missing")
    uid = value.rstrip("\0 ").strip()
    if not uid:
        raise InvalidUIDError(f"{name} is empty")
    if len(uid) > 64:
        raise InvalidUIDError(f"{name} is longer than 64 characters ({len(uid)})")
    if not _UID_RE.match(uid):
        raise InvalidUIDError(f"{name} {uid[:80]!r} is not a valid DICOM UID")
    return uid


def relative_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    """Archive-relative path of an instance (UIDs must already be validated)."""
    bucket = hashlib.sha1(study_uid.encode()).hexdigest()[:2]
    return f"{bucket}/{study_uid}/{series_uid}/{sop_uid}.dcm"


@dataclass(frozen=True, slots=True)
class TempFile:
    """A durable temporary file waiting to be renamed into the archive."""

    path: Path
    size: int
    checksum: str


class Archive:
    """The storage folder.

    Args:
        root: Folder holding the archive; created when missing.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create storage folder {self.root}: {exc}") from exc
        self.incoming = self.root / INCOMING / f"{socket.gethostname()}-{os.getpid()}"
        self.incoming.mkdir(parents=True, exist_ok=True)
        self._known_dirs: set[Path] = set()

    def abspath(self, rel: str) -> Path:
        return self.root / rel

    def write_temp(self, chunks: Iterable[bytes | memoryview]) -> TempFile:
        """Write ``chunks`` to a new temporary file, fsync it and return its checksum.

        Raises:
            StoreError: The disk is full or the file cannot be written; nothing is left behind.
        """
        path = self.incoming / f"{uuid.uuid4().hex}.tmp"
        digest = hashlib.sha256()
        size = 0
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                for chunk in chunks:
                    view = memoryview(chunk)
                    digest.update(view)
                    while view:
                        n = os.write(fd, view)
                        view = view[n:]
                        size += n
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self.discard(path)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreError(f"storage full: {exc}", "Out of resources") from exc
            raise StoreError(f"cannot write to {self.root}: {exc}") from exc
        return TempFile(path, size, digest.hexdigest())

    def link_into_place(self, temp: TempFile, rel: str, dirs: set[Path]) -> str:
        """Hard-link a temporary file to its archive path; return the path actually used.

        Linking (not renaming) never replaces an existing file: a leftover of a crash or a file
        another process is about to commit stays untouched and the new file takes a unique name.
        The temporary file stays until the caller's transaction is settled. Folders whose
        entries changed are added to ``dirs`` for one fsync per batch.
        """
        dest = self.root / rel
        parent = dest.parent
        if parent not in self._known_dirs:
            missing = []
            p = parent
            while not p.exists():
                missing.append(p)
                p = p.parent
            parent.mkdir(parents=True, exist_ok=True)
            dirs.update(m.parent for m in missing)
            if len(self._known_dirs) > 50_000:
                self._known_dirs.clear()
            self._known_dirs.add(parent)
        try:
            os.link(temp.path, dest)
        except FileExistsError:
            rel = rel.removesuffix(".dcm") + f".{uuid.uuid4().hex[:8]}.dcm"
            dest = self.root / rel
            os.link(temp.path, dest)
        dirs.add(parent)
        return rel

    @staticmethod
    def sync_dirs(dirs: Iterable[Path]) -> None:
        """fsync folders so renames and new entries in them survive a power loss."""
        for d in dirs:
            try:
                fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    @staticmethod
    def discard(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def remove(self, rel: str) -> None:
        """Delete an archived file (after its index row is gone) and prune empty folders."""
        path = self.root / rel
        self.discard(path)
        parent = path.parent
        for _ in range(3):
            try:
                parent.rmdir()
            except OSError:
                break
            self._known_dirs.discard(parent)
            parent = parent.parent

    def cleanup_incoming(self, is_indexed: Callable[[str, str], bool] | None = None) -> int:
        """Remove temporary files left by dead processes of this host; return how many.

        A temporary file was never acknowledged (the index commit comes after its link into
        place, and temporary files are removed only after the commit), so deleting it loses
        nothing. A leftover that is also linked into the archive (a crash between the link and
        the commit) has that archive link removed too, unless ``is_indexed(sop_instance_uid,
        relative_path)`` says the index holds it.
        """
        stale: list[Path] = []
        base = self.root / INCOMING
        host = socket.gethostname()
        dead_folders: list[Path] = []
        for folder in base.iterdir() if base.exists() else ():
            owner, _, pid = folder.name.rpartition("-")
            if folder == self.incoming or owner != host or not pid.isdigit():
                continue
            if pid_alive(int(pid)):
                continue
            dead_folders.append(folder)
            stale.extend(folder.glob("*.tmp"))
        stale.extend(self.incoming.glob("*.tmp"))
        for temp in stale:
            if is_indexed is not None:
                self._unlink_uncommitted(temp, is_indexed)
            self.discard(temp)
        for folder in dead_folders:
            shutil.rmtree(folder, ignore_errors=True)
        if stale:
            log.warning("removed %d unacknowledged temporary file(s) from %s", len(stale), base)
        return len(stale)

    def _unlink_uncommitted(self, temp: Path, is_indexed: Callable[[str, str], bool]) -> None:
        try:
            if temp.stat().st_nlink < 2:
                return
            from pydicom import dcmread

            ds = dcmread(
                temp,
                stop_before_pixels=True,
                specific_tags=["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"],
            )
            study = validate_uid(str(ds.StudyInstanceUID))
            series = validate_uid(str(ds.SeriesInstanceUID))
            sop = validate_uid(str(ds.SOPInstanceUID))
        except Exception:  # unreadable leftovers are simply deleted
            return
        folder = self.root / relative_path(study, series, sop)
        for candidate in folder.parent.glob(f"{sop}*.dcm") if folder.parent.exists() else ():
            try:
                same = os.path.samefile(candidate, temp)
            except OSError:
                continue
            rel = candidate.relative_to(self.root).as_posix()
            if same and not is_indexed(sop, rel):
                log.warning("removing %s: linked by a crashed writer, never committed", rel)
                self.remove(rel)

    def close(self) -> None:
        """Remove this process's (empty) incoming folder."""
        with contextlib.suppress(OSError):
            self.incoming.rmdir()
