"""`tui-pacs import`: the summary line, the listed rejections and the exit status."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from tests.cli.config_file import write_config_file
from tests.services.test_importer import build_tree
from tests.store.synthetic import archive_files, make_dataset, new_uid, row_counts, write
from tui_pacs.cli import main
from tui_pacs.config import Config
from tui_pacs.store.models import Instance

SUMMARY = re.compile(r"^imported (\d+), duplicates (\d+), rejected (\d+)$", re.M)


def _import(cfg: Path, *paths: Path, quiet: bool = False) -> Result:
    args = ["--config", str(cfg), "import", *(["--quiet"] if quiet else []), *map(str, paths)]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def _summary(result: Result) -> tuple[int, int, int]:
    m = SUMMARY.search(result.stdout)
    assert m, result.output
    return int(m[1]), int(m[2]), int(m[3])


def test_import_lists_rejections_and_exits_1(config: Config, tmp_path: Path) -> None:
    """Bad files are listed on stderr with their reason, counted, and make the exit status 1."""
    tree = build_tree(tmp_path)
    cfg = write_config_file(config, tmp_path)
    result = _import(cfg, tree.root)
    assert result.exit_code == 1, result.output
    assert _summary(result) == (len(tree.sops), 0, len(tree.rejected))
    for name, fragment in tree.rejected.items():
        assert re.search(
            rf"^rejected: {re.escape(name)}: .*{re.escape(fragment)}", result.stderr, re.M
        ), name
    assert "Traceback" not in result.output
    assert Instance.select().count() == len(tree.sops)

    files, rows = archive_files(config.storage_path), row_counts()
    again = _import(cfg, tree.root, quiet=True)
    assert again.exit_code == 1
    assert _summary(again) == (0, len(tree.sops), len(tree.rejected))
    assert archive_files(config.storage_path) == files
    assert row_counts() == rows


def test_clean_import_exits_0_and_reimport_is_all_duplicates(
    config: Config, tmp_path: Path
) -> None:
    """A folder of good files imports with exit 0; importing it again reports only duplicates."""
    folder = tmp_path / "series"
    study, series = new_uid(), new_uid()
    for n in range(5):
        write(
            make_dataset(study_uid=study, series_uid=series, instance_number=n), folder / f"{n}.dcm"
        )
    cfg = write_config_file(config, tmp_path)
    first = _import(cfg, folder)
    assert first.exit_code == 0, first.output
    assert _summary(first) == (5, 0, 0)
    assert "rejected:" not in first.stderr
    files = archive_files(config.storage_path)
    second = _import(cfg, folder, *sorted(folder.iterdir()))
    assert second.exit_code == 0, second.output
    assert _summary(second) == (0, 5, 0)
    assert archive_files(config.storage_path) == files


def test_missing_path_is_a_rejection(sqlite_config: Config, tmp_path: Path) -> None:
    """A path that does not exist is listed and counted, and the exit status is 1."""
    cfg = write_config_file(sqlite_config, tmp_path)
    missing = tmp_path / "nowhere"
    result = _import(cfg, missing)
    assert result.exit_code == 1
    assert f"rejected: {missing}: no such file or folder" in result.stderr
    assert _summary(result) == (0, 0, 1)


def test_bad_config_stops_import(tmp_path: Path) -> None:
    """A broken config file stops the command before anything is imported (exit 2)."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[storage]\nduplicate_policy = "sometimes"\n')
    result = CliRunner().invoke(main, ["--config", str(cfg), "import", str(tmp_path)])
    assert result.exit_code == 2
    assert "storage.duplicate_policy" in result.stderr


def test_import_as_a_process(sqlite_config: Config, tmp_path: Path) -> None:
    """`python -m tui_pacs import` in a real process prints the summary and exits by the rules."""
    folder = tmp_path / "in"
    write(make_dataset(study_uid=new_uid(), series_uid=new_uid()), folder / "one.dcm")
    (folder / "readme.txt").write_text("not an image")
    cfg = write_config_file(sqlite_config, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "tui_pacs", "--config", str(cfg), "import", "--quiet", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert SUMMARY.search(proc.stdout)[0] == "imported 1, duplicates 0, rejected 1"  # type: ignore[index]
    assert f"rejected: {folder / 'readme.txt'}: not a DICOM file" in proc.stderr
    (folder / "readme.txt").unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "tui_pacs", "--config", str(cfg), "import", "--quiet", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "imported 0, duplicates 1, rejected 0" in proc.stdout
