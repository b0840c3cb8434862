"""Import: files, folders, DICOMDIR media, zip, gzip; bad files listed and skipped; idempotent."""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom import dcmread
from pydicom.fileset import FileSet

from tests.store.synthetic import (
    archive_files,
    assert_counts_consistent,
    make_dataset,
    new_uid,
    open_ingestor,
    row_counts,
    temp_files,
    write,
)
from tui_pacs.config import Config
from tui_pacs.model import ImportSummary
from tui_pacs.services.importer import import_paths, iter_sources
from tui_pacs.store.models import Instance

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
PNG = (
    b"\x89PNG\r\n\x1a\n"
    + struct.pack(">I", 13)
    + b"IHDR"
    + struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    + b"\x00\x00\x00\x00"
    + struct.pack(">I", 0)
    + b"IEND\xaeB`\x82"
)
AS_ROOT = os.geteuid() == 0


@dataclass
class Tree:
    """A folder of things to import and what should become of each."""

    root: Path
    #: SOP Instance UIDs that must be archived.
    sops: set[str] = field(default_factory=set)
    #: Reported name (path, or zip:member) -> a fragment of the expected reason.
    rejected: dict[str, str] = field(default_factory=dict)


def no_meta_implicit(tmp: Path) -> tuple[Path, str]:
    """A bare Implicit VR Little Endian data set: no preamble, no File Meta Information."""
    ds = make_dataset(study_uid=new_uid(), series_uid=new_uid(), patient_id="RAW01")
    del ds.file_meta
    buf = io.BytesIO()
    ds.save_as(buf, implicit_vr=True, little_endian=True)
    blob = buf.getvalue()
    assert blob[:4] == b"\x08\x00\x05\x00"  # starts with (0008,0005), no preamble
    path = tmp / "raw" / "no_meta_implicit"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return path, ds.SOPInstanceUID


def build_tree(tmp_path: Path) -> Tree:
    """Good files (plain, nested, raw, gzip, zip) mixed with every kind of bad one."""
    root = tmp_path / "incoming"
    tree = Tree(root)

    def good(src: Path, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        tree.sops.add(dcmread(src).SOPInstanceUID)

    good(TEST_FILES / "CT_small.dcm", root / "ct" / "CT_small.dcm")
    good(TEST_FILES / "MR_small_bigendian.dcm", root / "a" / "b" / "c" / "deep.dcm")
    synthetic = write(
        make_dataset(study_uid=new_uid(), series_uid=new_uid()), root / "synthetic.dcm"
    )
    tree.sops.add(dcmread(synthetic).SOPInstanceUID)
    raw, raw_sop = no_meta_implicit(root)
    tree.sops.add(raw_sop)

    gz = root / "plan.dcm.gz"
    gz.write_bytes(gzip.compress((TEST_FILES / "rtplan.dcm").read_bytes()))
    tree.sops.add(dcmread(TEST_FILES / "rtplan.dcm").SOPInstanceUID)
    cut_gz = root / "cut.dcm.gz"
    cut_gz.write_bytes(gzip.compress((TEST_FILES / "CT_small.dcm").read_bytes())[:-40])
    tree.rejected[str(cut_gz)] = "cannot read"

    bundle = root / "zips" / "bundle.zip"
    bundle.parent.mkdir()
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(TEST_FILES / "JPEG2000.dcm", "images/JPEG2000.dcm")
        zf.write(TEST_FILES / "rtdose.dcm", "images/more/rtdose")
        zf.writestr("README.txt", "a text file inside the zip")
        zf.writestr("images/", "")
    for name in ("JPEG2000.dcm", "rtdose.dcm"):
        tree.sops.add(dcmread(TEST_FILES / name).SOPInstanceUID)
    tree.rejected[f"{bundle}:README.txt"] = "not a DICOM file"

    bad = {
        root / "notes.txt": b"patient list\nnot DICOM at all\n",
        root / "picture.png": PNG,
        root / "empty.dcm": b"",
        root / "noise.bin": random.Random(5).randbytes(3000),
        root / "preamble_only.dcm": b"\0" * 128 + b"DICM",
    }
    for path, blob in bad.items():
        path.write_bytes(blob)
        tree.rejected[str(path)] = "not a DICOM file"
    truncated = root / "ct" / "MR_truncated.dcm"
    shutil.copyfile(TEST_FILES / "MR_truncated.dcm", truncated)
    tree.rejected[str(truncated)] = "truncated"
    dangling = root / "gone.dcm"
    dangling.symlink_to(tmp_path / "deleted-meanwhile.dcm")
    tree.rejected[str(dangling)] = "cannot read: No such file or directory"
    if not AS_ROOT:  # root reads through chmod 000; the dangling link covers a failing read
        locked = root / "locked.dcm"
        shutil.copyfile(TEST_FILES / "CT_small.dcm", locked)
        locked.chmod(0)
        tree.rejected[str(locked)] = "cannot read: Permission denied"
    return tree


def _check_summary(summary: ImportSummary, tree: Tree, imported: int, duplicates: int) -> None:
    reasons = {p.path: p.reason for p in summary.problems}
    assert set(reasons) == set(tree.rejected), reasons
    for name, fragment in tree.rejected.items():
        assert fragment in reasons[name], (name, reasons[name])
    assert (summary.imported, summary.duplicates, summary.rejected) == (
        imported,
        duplicates,
        len(tree.rejected),
    )


def test_import_folder_recursively_and_again(config: Config, tmp_path: Path) -> None:
    """A folder imports every DICOM file in it, lists the rest; a second import changes nothing."""
    tree = build_tree(tmp_path)
    with open_ingestor(config) as ing:
        first = import_paths(ing, [tree.root])
        _check_summary(first, tree, imported=len(tree.sops), duplicates=0)
        assert {i.sop_instance_uid for i in Instance.select()} == tree.sops
        files, rows = archive_files(config.storage_path), row_counts()
        assert len(files) == len(tree.sops)
        second = import_paths(ing, [tree.root])
        _check_summary(second, tree, imported=0, duplicates=len(tree.sops))
        assert archive_files(config.storage_path) == files
        assert row_counts() == rows
        assert temp_files(config.storage_path) == []
    assert_counts_consistent()
    raw = Instance.get(
        Instance.series.in_(
            Instance.series.rel_model.select().where(Instance.series.rel_model.modality == "CT")
        )
        & (Instance.transfer_syntax_uid == "1.2.840.10008.1.2")
    )
    archived = dcmread(config.storage_path / raw.path)
    assert archived.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert archived.PatientID == "RAW01"


def test_import_single_files_and_archives(config: Config, tmp_path: Path) -> None:
    """Single files, a .gz and a zip given by name are imported; a missing path is listed."""
    tree = build_tree(tmp_path)
    ct = tree.root / "ct" / "CT_small.dcm"
    gz = tree.root / "plan.dcm.gz"
    bundle = tree.root / "zips" / "bundle.zip"
    missing = tmp_path / "no-such-file.dcm"
    with open_ingestor(config) as ing:
        summary = import_paths(ing, [ct, gz, bundle, missing, ct])
    assert (summary.imported, summary.duplicates) == (4, 0)
    assert {(p.path, p.reason) for p in summary.problems} == {
        (str(missing), "no such file or folder"),
        (f"{bundle}:README.txt", "not a DICOM file"),
    }
    assert summary.rejected == 2
    assert Instance.select().count() == 4


def test_zip_members_are_all_read(sqlite_config: Config, tmp_path: Path) -> None:
    """Every member of a larger zip is read, even after the listing has moved on (one worker)."""
    bundle = tmp_path / "many.zip"
    study, series = new_uid(), new_uid()
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zf:
        for n in range(30):
            ds = make_dataset(study_uid=study, series_uid=series, instance_number=n)
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            zf.writestr(f"series/{n:03d}.dcm", buf.getvalue())
    with open_ingestor(sqlite_config) as ing:
        for workers in (1, 4):
            summary = import_paths(ing, [bundle], workers=workers)
            assert summary.problems == []
            assert summary.imported + summary.duplicates == 30
    assert Instance.select().count() == 30


def test_corrupt_zip_member(sqlite_config: Config, tmp_path: Path) -> None:
    """A damaged member is listed as unreadable; the other members still go in."""
    bundle = tmp_path / "damaged.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(TEST_FILES / "CT_small.dcm", "a.dcm")
        zf.write(TEST_FILES / "MR_small.dcm", "b.dcm")
    data = bytearray(bundle.read_bytes())
    at = data.index(b"a.dcm") + 5 + 300
    data[at : at + 64] = bytes(64)
    bundle.write_bytes(bytes(data))
    not_a_zip = tmp_path / "fake.zip"
    not_a_zip.write_bytes(b"PK\x03\x04 but nothing else")
    with open_ingestor(sqlite_config) as ing:
        summary = import_paths(ing, [bundle, not_a_zip])
    reasons = {p.path: p.reason for p in summary.problems}
    assert reasons[f"{bundle}:a.dcm"].startswith("cannot read")
    assert reasons[str(not_a_zip)] == "not a DICOM file"
    assert summary.imported == 1


def _copy_media(tmp_path: Path) -> Path:
    media = tmp_path / "cdrom"
    shutil.copytree(TEST_FILES / "dicomdirtests", media)
    return media


def test_import_dicomdir(config: Config, tmp_path: Path) -> None:
    """A DICOMDIR imports every instance it references; the folder walk then finds duplicates."""
    media = _copy_media(tmp_path)
    referenced = {inst.SOPInstanceUID for inst in FileSet(dcmread(media / "DICOMDIR"))}
    assert len(referenced) > 20
    with open_ingestor(config) as ing:
        summary = import_paths(ing, [media / "DICOMDIR"])
        assert (summary.imported, summary.duplicates, summary.rejected) == (len(referenced), 0, 0)
        assert {i.sop_instance_uid for i in Instance.select()} == referenced
        # The whole medium: the DICOMDIR itself is skipped, its files are duplicates now,
        # the other directory files are listed as what they are.
        walk = import_paths(ing, [media])
    reasons = {Path(p.path).name: p.reason for p in walk.problems}
    assert walk.duplicates == len(referenced)
    assert "DICOMDIR" not in reasons
    for name in (
        "DICOMDIR-bigEnd",
        "DICOMDIR-implicit",
        "DICOMDIR-reordered",
        "DICOMDIR-nopatient",
    ):
        assert reasons[name] == "a DICOMDIR (media directory), not an image"
    assert reasons["README.txt"] == "not a DICOM file"
    assert walk.imported + walk.duplicates + walk.rejected == walk.seen
    assert_counts_consistent()


def test_dicomdir_with_missing_file(sqlite_config: Config, tmp_path: Path) -> None:
    """A file the DICOMDIR references but the medium lacks is listed; the rest is imported."""
    media = _copy_media(tmp_path)
    instances = list(FileSet(dcmread(media / "DICOMDIR")))
    lost = Path(instances[0].path)
    lost.unlink()
    # Mounted media often show names in another case than the DICOMDIR records them.
    (media / "77654033" / "CR2").rename(media / "77654033" / "cr2")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"garbage")
    with open_ingestor(sqlite_config) as ing:
        summary = import_paths(ing, [media / "DICOMDIR", broken / "DICOMDIR"])
    reasons = {p.path: p.reason for p in summary.problems}
    assert reasons[str(lost)] == "referenced by the DICOMDIR but missing"
    assert reasons[str(broken / "DICOMDIR")].startswith("unreadable DICOMDIR")
    assert summary.imported == len(instances) - 1
    assert summary.rejected == 2


def test_progress_and_stop(sqlite_config: Config, tmp_path: Path) -> None:
    """on_progress sees every file with running totals; should_stop ends the import early."""
    folder = tmp_path / "series"
    study, series = new_uid(), new_uid()
    for n in range(6):
        write(
            make_dataset(study_uid=study, series_uid=series, instance_number=n), folder / f"{n}.dcm"
        )
    (folder / "junk.txt").write_text("x")
    seen: list[tuple[int, str]] = []
    with open_ingestor(sqlite_config) as ing:
        summary = import_paths(
            ing, [folder], on_progress=lambda s, name: seen.append((s.seen, name))
        )
        assert sorted(n for n, _ in seen) == list(range(1, 8))
        assert {Path(name).name for _, name in seen} == {
            *(f"{n}.dcm" for n in range(6)),
            "junk.txt",
        }
        assert (summary.imported, summary.rejected) == (6, 1)
        polls = {"n": 0}

        def stop() -> bool:
            polls["n"] += 1
            return polls["n"] > 2

        stopped = import_paths(ing, [folder], should_stop=stop)
    assert stopped.seen == 2


def test_iter_sources_expands_without_reading(tmp_path: Path) -> None:
    """Listing sources names every candidate once and reads nothing yet."""
    tree = build_tree(tmp_path)
    problems: list = []
    sources = list(iter_sources([tree.root, tree.root / "ct" / "CT_small.dcm"], problems))
    names = [s.name for s in sources]
    assert len(names) == len(set(names))
    assert f"{tree.root / 'zips' / 'bundle.zip'}:images/JPEG2000.dcm" in names
    assert str(tree.root / "a" / "b" / "c" / "deep.dcm") in names
    assert problems == []
