"""Import files, folders (recursively), DICOMDIR media and zip archives into the archive."""

from __future__ import annotations

import functools
import gzip
import logging
import os
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from tui_pacs.errors import DuplicateInstanceError, PacsError
from tui_pacs.model import ImportProblem, ImportSummary, StoreDisposition, StoreResult
from tui_pacs.services.ingest import Ingestor

log = logging.getLogger(__name__)

ProgressCallback = Callable[[ImportSummary, str], None]


@dataclass(frozen=True, slots=True)
class Source:
    """One candidate file: a name to report and a way to read its bytes."""

    name: str
    read: Callable[[], bytes]
    size: int = 0


def iter_sources(
    paths: Iterable[str | os.PathLike[str]], problems: list[ImportProblem]
) -> Iterator[Source]:
    """Expand paths into files: folders recursively, DICOMDIRs to what they list, zips to members.

    Paths that do not exist are recorded in ``problems``.
    """
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            problems.append(ImportProblem(str(path), "no such file or folder"))
            continue
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    yield from _file_sources(Path(root) / name, seen, problems, top_level=False)
        else:
            yield from _file_sources(path, seen, problems, top_level=True)


def _file_sources(
    path: Path, seen: set[Path], problems: list[ImportProblem], top_level: bool
) -> Iterator[Source]:
    resolved = path.resolve()
    if resolved in seen:
        return
    seen.add(resolved)
    if path.name.upper() == "DICOMDIR":
        if top_level:
            yield from _dicomdir_sources(path, seen, problems)
        # Inside a folder walk every referenced file is found by the walk itself.
        return
    if zipfile.is_zipfile(path):
        yield from _zip_sources(path, problems)
        return
    if path.suffix == ".gz":
        yield Source(str(path), functools.partial(_gunzip, path), _size(path))
        return
    yield Source(str(path), path.read_bytes, _size(path))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _dicomdir_sources(
    path: Path, seen: set[Path], problems: list[ImportProblem]
) -> Iterator[Source]:
    # The directory records are read directly: pydicom's FileSet drops a record whose file is
    # missing with only a warning, and the person importing a CD must hear about it.
    from pydicom import dcmread

    try:
        records = dcmread(path).DirectoryRecordSequence
    except Exception as exc:
        problems.append(ImportProblem(str(path), f"unreadable DICOMDIR: {exc}"))
        return
    for record in records:
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue  # patient, study and series records reference no file
        parts = [file_id] if isinstance(file_id, str) else [str(p) for p in file_id]
        file_path = _media_path(path.parent, parts)
        if not file_path.is_file():
            problems.append(ImportProblem(str(file_path), "referenced by the DICOMDIR but missing"))
            continue
        resolved = file_path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        yield Source(str(file_path), file_path.read_bytes, _size(file_path))


def _media_path(root: Path, parts: list[str]) -> Path:
    """The file a Referenced File ID names, matching case as mounted media often change it."""
    path = root.joinpath(*parts)
    if path.exists():
        return path
    current = root
    for part in parts:
        exact = current / part
        if exact.exists():
            current = exact
            continue
        try:
            match = next(c for c in current.iterdir() if c.name.upper() == part.upper())
        except (OSError, StopIteration):
            return path
        current = match
    return current


def _zip_sources(path: Path, problems: list[ImportProblem]) -> Iterator[Source]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        problems.append(ImportProblem(str(path), f"unreadable zip archive: {exc}"))
        return
    lock = threading.Lock()
    # Members are read by the import workers after this generator has moved on (and closed the
    # archive it listed them from), so the readers share one handle of their own, opened on first
    # use and closed when the last Source is dropped.
    shared: dict[str, zipfile.ZipFile] = {}

    def reader(info: zipfile.ZipInfo) -> Callable[[], bytes]:
        def read() -> bytes:
            with lock:  # ZipFile is not safe for concurrent reads
                if "zip" not in shared:
                    shared["zip"] = zipfile.ZipFile(path)
                return shared["zip"].read(info.filename)

        return read

    with archive:
        for info in archive.infolist():
            if info.is_dir() or info.filename.upper().endswith("DICOMDIR"):
                continue
            yield Source(f"{path}:{info.filename}", reader(info), info.file_size)


def import_paths(
    ingestor: Ingestor,
    paths: Iterable[str | os.PathLike[str]],
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    workers: int = 4,
) -> ImportSummary:
    """Import every DICOM file found under ``paths``.

    Unreadable and non-DICOM files are recorded with their reason and the batch goes on.
    Importing the same files again changes nothing (they count as duplicates).

    Args:
        ingestor: Where instances go.
        paths: Files, folders, DICOMDIR files, zip archives.
        on_progress: Called after each file with the running summary and the file's name.
        should_stop: Polled between files; True stops the import early.
        workers: Files read, parsed and written at once (index commits are batched).
    """
    summary = ImportSummary()
    lock = threading.Lock()

    def one(source: Source) -> None:
        outcome: StoreResult | None = None
        reason = ""
        try:
            blob = source.read()
            outcome = ingestor.store_bytes(blob, "")
        except DuplicateInstanceError as exc:
            reason = str(exc)
        except PacsError as exc:
            reason = _reason(exc, source)
        except OSError as exc:
            reason = f"cannot read: {exc.strerror or exc}"
        except (EOFError, zlib.error, zipfile.BadZipFile) as exc:  # cut or corrupt .gz/zip
            reason = f"cannot read: {exc}"
        except Exception as exc:  # a bad file never stops the batch
            log.exception("import of %s failed", source.name)
            reason = f"unexpected error: {exc}"
        with lock:
            if outcome is None:
                summary.rejected += 1
                summary.problems.append(ImportProblem(source.name, reason))
            elif outcome.disposition is StoreDisposition.DUPLICATE_KEPT:
                summary.duplicates += 1
            else:
                summary.imported += 1
            if on_progress:
                on_progress(summary, source.name)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="import") as pool:
        pending: set[Future[None]] = set()
        for source in iter_sources(paths, summary.problems):
            if should_stop():
                break
            pending.add(pool.submit(one, source))
            if len(pending) >= workers * 4:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()
        for f in pending:
            f.result()
    # Paths that did not exist were recorded as problems without being counted.
    summary.rejected = len(summary.problems)
    return summary


def _reason(exc: PacsError, source: Source) -> str:
    text = str(exc)
    if "not a readable DICOM" in text or "no DICOM elements" in text:
        return "not a DICOM file"
    return text


def _gunzip(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())
