"""A crash between linking a file into the archive and committing its row leaves nothing behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from pydicom.data import get_testdata_file

from tui_pacs.store.archive import INCOMING, Archive, relative_path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _linked_leftover(root: Path) -> tuple[Path, str, str]:
    """Simulate a dead writer: a temp file in its incoming folder, already linked into place."""
    folder = root / INCOMING / f"{socket.gethostname()}-{_dead_pid()}"
    folder.mkdir(parents=True)
    temp = folder / "abc.tmp"
    temp.write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    study = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    series = "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"
    sop = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    rel = relative_path(study, series, sop)
    dest = root / rel
    dest.parent.mkdir(parents=True)
    os.link(temp, dest)
    return dest, sop, rel


def test_uncommitted_link_is_removed_with_its_temp(tmp_path: Path) -> None:
    """The archive link of a never-committed instance goes when the dead writer's temp goes."""
    root = tmp_path / "archive"
    dest, sop, rel = _linked_leftover(root)
    asked: list[tuple[str, str]] = []

    def is_indexed(uid: str, path: str) -> bool:
        asked.append((uid, path))
        return False

    archive = Archive(root)
    assert archive.cleanup_incoming(is_indexed) == 1
    assert asked == [(sop, rel)]
    assert not dest.exists()


def test_committed_link_is_kept(tmp_path: Path) -> None:
    """If the index holds the instance (the commit landed before the crash), its file stays."""
    root = tmp_path / "archive"
    dest, _sop, _rel = _linked_leftover(root)
    archive = Archive(root)
    assert archive.cleanup_incoming(lambda uid, path: True) == 1
    assert dest.exists()


def test_other_files_in_the_folder_are_untouched(tmp_path: Path) -> None:
    """Only the file sharing the leftover's inode is removed, not a committed sibling copy."""
    root = tmp_path / "archive"
    dest, _sop, _rel = _linked_leftover(root)
    sibling = dest.with_name(dest.stem + ".1234abcd.dcm")
    archive = Archive(root)
    sibling.write_bytes(b"committed copy")
    archive.cleanup_incoming(lambda uid, path: False)
    assert not dest.exists()
    assert sibling.read_bytes() == b"committed copy"
