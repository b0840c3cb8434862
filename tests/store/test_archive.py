"""The file archive: UID validation, durable temporary files, no-clobber links, crash cleanup."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tui_pacs.errors import InvalidUIDError, StoreError
from tui_pacs.store import archive as archive_module
from tui_pacs.store.archive import INCOMING, Archive, relative_path, validate_uid

BAD_UIDS = [
    "../../x",
    "1.2/3",
    "1.2\\3",
    "/1.2.3",
    "1.2.3/..",
    "1" * 65,
    "1." + "2" * 63,
    "",
    "   ",
    "\0\0",
    "1.2.a",
    "1.2.3x",
    "1..2",
    ".1.2",
    "1.2.",
    "1.2 .3",
    "-1.2",
]


@pytest.mark.parametrize("uid", BAD_UIDS, ids=[repr(u)[:20] for u in BAD_UIDS])
def test_validate_uid_refuses(uid: str) -> None:
    """Anything that is not digits separated by single dots, 1-64 long, is refused."""
    with pytest.raises(InvalidUIDError):
        validate_uid(uid, "SOP Instance UID")


@pytest.mark.parametrize("value", [None, 1.2, b"1.2.3"])
def test_validate_uid_refuses_non_text(value: object) -> None:
    """A missing or non-string UID is refused with the attribute's name."""
    with pytest.raises(InvalidUIDError, match="Study Instance UID"):
        validate_uid(value, "Study Instance UID")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("1.2.3", "1.2.3"),
        ("1.2.3\0", "1.2.3"),
        ("1.2.3 ", "1.2.3"),
        ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2"),
        ("1." + "2" * 62, "1." + "2" * 62),  # exactly 64
        ("1." + "2" * 62 + "\0", "1." + "2" * 62),  # 64 plus padding
        ("1.2.03", "1.2.03"),  # leading zero: not conformant, but sent by real modalities
    ],
)
def test_validate_uid_accepts(raw: str, clean: str) -> None:
    """Valid UIDs pass; trailing NUL/space padding is removed."""
    assert validate_uid(raw) == clean


def test_error_names_the_attribute() -> None:
    """The message says which UID was bad and why."""
    with pytest.raises(InvalidUIDError, match=r"Series Instance UID .*'1\.2/3'"):
        validate_uid("1.2/3", "Series Instance UID")
    with pytest.raises(InvalidUIDError, match=r"longer than 64 characters \(65\)"):
        validate_uid("1" * 65)


def test_relative_path_layout() -> None:
    """Files live at <2 hex of sha1(study)>/<study>/<series>/<sop>.dcm."""
    bucket = hashlib.sha1(b"1.2.3").hexdigest()[:2]
    assert relative_path("1.2.3", "1.2.3.4", "1.2.3.4.5") == f"{bucket}/1.2.3/1.2.3.4/1.2.3.4.5.dcm"


def _trace_fsync(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the path of every fsync'd descriptor (and every link) in call order."""
    calls: list[str] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        calls.append("fsync " + os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def link(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(f"link {src} -> {dst}")
        real_link(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    return calls


def test_temp_file_is_fsynced_then_linked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_temp fsyncs the data before link_into_place links it; the folders are synced after."""
    archive = Archive(tmp_path / "archive")
    calls = _trace_fsync(monkeypatch)
    temp = archive.write_temp([b"abc", memoryview(b"defg"), b""])
    assert temp.path.parent == archive.incoming
    assert temp.path.read_bytes() == b"abcdefg"
    assert temp.size == 7
    assert temp.checksum == hashlib.sha256(b"abcdefg").hexdigest()
    assert calls == [f"fsync {temp.path}"]

    dirs: set[Path] = set()
    rel = relative_path("1.2.3", "1.2.3.4", "1.2.3.4.5")
    assert archive.link_into_place(temp, rel, dirs) == rel
    final = archive.abspath(rel)
    assert calls[1] == f"link {temp.path} -> {final}"
    assert final.read_bytes() == b"abcdefg"
    assert os.stat(final).st_ino == os.stat(temp.path).st_ino
    # Every folder whose entries changed is to be synced: the new chain and the file's folder.
    assert final.parent in dirs and archive.root in dirs
    archive.sync_dirs(dirs)
    synced = {c.removeprefix("fsync ") for c in calls[2:]}
    assert {str(d) for d in dirs} == synced


def test_write_temp_full_disk_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk is reported as 'storage full' and the partial temporary file is removed."""
    archive = Archive(tmp_path / "archive")
    real_write = os.write
    calls = {"n": 0}

    def write(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(StoreError, match="storage full") as info:
        archive.write_temp([b"first", b"second"])
    assert info.value.title == "Out of resources"
    assert list(archive.incoming.iterdir()) == []


def test_write_temp_other_error_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any other write failure is a StoreError naming the archive, with nothing left behind."""
    archive = Archive(tmp_path / "archive")

    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StoreError, match=f"cannot write to {archive.root}"):
        archive.write_temp([b"data"])
    assert list(archive.incoming.iterdir()) == []


def test_leftover_at_final_path_is_never_clobbered(tmp_path: Path) -> None:
    """A file already at the final path stays untouched; the new file takes a unique name."""
    archive = Archive(tmp_path / "archive")
    rel = relative_path("1.2.3", "1.2.3.4", "1.2.3.4.5")
    leftover = archive.abspath(rel)
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"leftover of a crash")
    temp = archive.write_temp([b"new content"])
    used = archive.link_into_place(temp, rel, set())
    assert used != rel
    assert used.startswith(rel.removesuffix(".dcm") + ".") and used.endswith(".dcm")
    assert leftover.read_bytes() == b"leftover of a crash"
    assert archive.abspath(used).read_bytes() == b"new content"
    # A second arrival with the same name collides with both and still clobbers neither.
    temp2 = archive.write_temp([b"third"])
    used2 = archive.link_into_place(temp2, rel, set())
    assert used2 not in (rel, used)
    assert archive.abspath(used).read_bytes() == b"new content"


def test_remove_prunes_empty_folders_only(tmp_path: Path) -> None:
    """Removing the last file of a series prunes empty folders but never the archive root."""
    archive = Archive(tmp_path / "archive")
    rel_a = relative_path("1.2.3", "1.2.3.4", "1.2.3.4.5")
    rel_b = relative_path("1.2.3", "1.2.3.9", "1.2.3.9.1")
    for rel in (rel_a, rel_b):
        archive.link_into_place(archive.write_temp([b"x"]), rel, set())
    archive.remove(rel_a)
    assert not archive.abspath(rel_a).parent.exists()
    assert archive.abspath(rel_b).exists()
    archive.remove(rel_b)
    assert not archive.abspath(rel_b).parent.parent.exists()
    assert archive.root.is_dir()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_cleanup_incoming_removes_dead_processes_only(tmp_path: Path) -> None:
    """Temporary folders of dead PIDs on this host go; live PIDs and other hosts stay."""
    root = tmp_path / "archive"
    host = socket.gethostname()
    dead = _dead_pid()
    base = root / INCOMING
    folders = {
        "dead": base / f"{host}-{dead}",
        "alive": base / f"{host}-{os.getppid()}",
        "other_host": base / f"some-other-host-{dead}",
        "not_a_pid": base / f"{host}-abc",
    }
    for name, folder in folders.items():
        folder.mkdir(parents=True)
        (folder / f"{name}.tmp").write_bytes(b"x")
        (folder / f"{name}2.tmp").write_bytes(b"y")
    archive = Archive(root)
    (archive.incoming / "own-stale.tmp").write_bytes(b"z")
    assert archive.cleanup_incoming() == 3
    assert not folders["dead"].exists()
    for name in ("alive", "other_host", "not_a_pid"):
        assert sorted(p.name for p in folders[name].iterdir()) == [f"{name}.tmp", f"{name}2.tmp"]
    assert archive.incoming.is_dir() and list(archive.incoming.iterdir()) == []
    assert archive.cleanup_incoming() == 0


def test_incoming_folder_is_per_process(tmp_path: Path) -> None:
    """Each process writes temporaries under .incoming/<host>-<pid>, removed on close when empty."""
    archive = Archive(tmp_path / "archive")
    assert (
        archive.incoming
        == tmp_path / "archive" / INCOMING / f"{socket.gethostname()}-{os.getpid()}"
    )
    archive.close()
    assert not archive.incoming.exists()


def test_unusable_storage_folder_is_a_store_error(tmp_path: Path) -> None:
    """A storage path that cannot be a folder is reported as a StoreError naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=f"cannot create storage folder {blocker / 'archive'}"):
        Archive(blocker / "archive")


def test_alive_check() -> None:
    """The PID check the archive uses says dead for a reaped child and alive for ourselves."""
    assert archive_module.pid_alive(os.getpid())
    assert not archive_module.pid_alive(_dead_pid())
