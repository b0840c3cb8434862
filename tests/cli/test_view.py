"""`tui-pacs view`: the PNG it writes, its terminal output and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner, Result
from PIL import Image

from tests.cli.config_file import write_config_file
from tests.imaging.synthetic import bundled, linear, raw_le, read
from tests.store.synthetic import open_ingestor
from tui_pacs.cli import main
from tui_pacs.config import Config
from tui_pacs.services.importer import import_paths

ROOT = Path(__file__).resolve().parents[2]


def _view(*args: object) -> Result:
    return CliRunner().invoke(main, ["view", *map(str, args)], catch_exceptions=False)


def test_output_png_is_the_rendered_8_bit_image(tmp_path: Path) -> None:
    """--preset brain --output writes CT_small at 128x128, each pixel LINEAR of its HU value."""
    out = tmp_path / "ct.png"
    result = _view(bundled("CT_small.dcm"), "--preset", "brain", "--output", out)
    assert result.exit_code == 0, result.output
    png = Image.open(out)
    assert png.mode == "L" and png.size == (128, 128)
    stored = raw_le(read("CT_small.dcm"), "i2").reshape(128, 128)
    np.testing.assert_array_equal(np.asarray(png), linear(stored - 1024.0, 40, 80))
    assert "128x128 C 40 W 80" in result.stderr


def test_output_free_window_frame_and_size(tmp_path: Path) -> None:
    """--window, --frame (1-based) and --size reach the pipeline."""
    mr = tmp_path / "mr.png"
    assert _view(bundled("MR_small.dcm"), "--window", "500,1000", "--output", mr).exit_code == 0
    stored = raw_le(read("MR_small.dcm"), "i2").reshape(64, 64)
    np.testing.assert_array_equal(np.asarray(Image.open(mr)), linear(stored, 500, 1000))
    second = tmp_path / "second.png"
    assert (
        _view(bundled("SC_rgb_rle_2frame.dcm"), "--frame", "2", "--output", second).exit_code == 0
    )
    first = read("SC_rgb_rle.dcm").pixel_array
    np.testing.assert_array_equal(np.asarray(Image.open(second)), 255 - first)
    small = tmp_path / "small.png"
    assert _view(bundled("CT_small.dcm"), "--size", "64x40", "--output", small).exit_code == 0
    assert Image.open(small).size == (40, 40)


def test_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    """Unknown preset, missing frame, non-DICOM file: `Title: message`, exit 1, no traceback."""
    out = tmp_path / "x.png"
    result = _view(bundled("MR_small.dcm"), "--preset", "lung", "--output", out)
    assert result.exit_code == 1 and result.stderr.startswith("Unknown preset: ")
    result = _view(bundled("MR_small.dcm"), "--frame", "3", "--output", out)
    assert result.exit_code == 1 and "the image has 1" in result.stderr
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"junk" * 100)
    result = _view(junk, "--output", out)
    assert result.exit_code == 1 and result.stderr.startswith("Cannot read file: ")
    result = _view(bundled("MR_truncated.dcm"), "--output", out)
    assert result.exit_code == 1 and result.stderr.startswith("Broken image: ")
    result = _view(bundled("rtplan.dcm"), "--output", out)
    assert result.exit_code == 1 and result.stderr.startswith("No image: ")
    assert not out.exists()
    result = CliRunner().invoke(
        main, ["view", str(bundled("MR_small.dcm")), "--window", "1,2", "--preset", "auto"]
    )
    assert result.exit_code == 2


def test_block_graphics_to_a_pipe() -> None:
    """--graphics block prints half-block characters and the annotations on stderr."""
    result = _view(bundled("CT_small.dcm"), "--graphics", "block", "--size", "160")
    assert result.exit_code == 0, result.output
    assert "\u2580" in result.stdout
    assert "CompressedSamples, CT1" in result.stderr


def test_view_never_loads_textual(tmp_path: Path) -> None:
    """The view command (PNG and terminal paths) runs without importing Textual."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from tui_pacs.cli import main\n"
        f"ct = {str(bundled('CT_small.dcm'))!r}\n"
        f"r = CliRunner().invoke(main, ['view', ct, '--output', {str(tmp_path / 'a.png')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(main, ['view', ct, '--graphics', 'block'])\n"
        "assert r.exit_code == 0, r.output\n"
        "sys.exit(1 if any(m.split('.')[0] == 'textual' for m in sys.modules) else 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_archived_instance_by_uid(sqlite_config: Config, tmp_path: Path) -> None:
    """`view SOP_INSTANCE_UID --output` finds the archived file through the configured index."""
    with open_ingestor(sqlite_config) as ing:
        assert import_paths(ing, [bundled("MR_small.dcm")]).imported == 1
    cfg = write_config_file(sqlite_config, tmp_path)
    out = tmp_path / "mr.png"
    uid = read("MR_small.dcm").SOPInstanceUID
    result = CliRunner().invoke(
        main, ["--config", str(cfg), "view", uid, "--output", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    stored = raw_le(read("MR_small.dcm"), "i2").reshape(64, 64)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), linear(stored, 600, 1600))
    result = CliRunner().invoke(
        main, ["--config", str(cfg), "view", "1.2.3.4", "--output", str(out)]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Not found: instance 1.2.3.4 is not in the archive")
