"""Every transfer syntax pydicom decodes here gives its uncompressed twin's pixels; failures are
clear errors, never crashes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    HTJ2KLossless,
    JPEG2000Lossless,
    RLELossless,
)

from tests.imaging.synthetic import bundled, read, save
from tui_pacs.errors import PacsError
from tui_pacs.imaging import render_frame
from tui_pacs.imaging.compression import is_lossy, lossy_description
from tui_pacs.imaging.decode import decode_frame, read_dataset
from tui_pacs.imaging.errors import (
    ImagingError,
    NoPixelDataError,
    PixelDataError,
    UnreadableFileError,
)

ROOT = Path(__file__).resolve().parents[2]

MR_TWINS = [
    "MR_small_RLE.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_implicit.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_padded.dcm",
]


@pytest.mark.filterwarnings("ignore:The pixel data is 8320 bytes long")
@pytest.mark.parametrize("name", MR_TWINS)
def test_lossless_mr_twins_decode_to_the_same_stored_values(name: str) -> None:
    """RLE, big endian, implicit, JPEG 2000 and JPEG-LS lossless MR_small equal the original."""
    reference = decode_frame(read("MR_small.dcm")).pixels
    twin = read(name)
    np.testing.assert_array_equal(decode_frame(twin).pixels, reference)
    np.testing.assert_array_equal(
        render_frame(twin).pixels, render_frame(read("MR_small.dcm")).pixels
    )
    assert not is_lossy(twin)


def _reencoded(tmp_path: Path, syntax: object, frames: list[bytes]) -> Path:
    ds = read("MR_small.dcm")
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return save(ds, tmp_path / "twin.dcm")


def test_htj2k_lossless_twin(tmp_path: Path) -> None:
    """An HTJ2K lossless codestream (encoded here with OpenJPH) decodes to MR_small's values."""
    ojph = pytest.importorskip("ojph", reason="OpenJPH bindings (test extra) encode HTJ2K")
    reference = decode_frame(read("MR_small.dcm")).pixels
    codestream = bytes(ojph.imwrite_to_memory(reference, reversible=True))
    ds = read_dataset(_reencoded(tmp_path, HTJ2KLossless, [codestream]))
    np.testing.assert_array_equal(decode_frame(ds).pixels, reference)
    assert not is_lossy(ds)


def test_deflated_twin(tmp_path: Path) -> None:
    """Deflated Explicit VR Little Endian (the data set deflated, pixels native) is identical."""
    ds = read("MR_small.dcm")
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    twin = read_dataset(save(ds, tmp_path / "deflated.dcm"))
    np.testing.assert_array_equal(
        render_frame(twin).pixels, render_frame(read("MR_small.dcm")).pixels
    )
    assert render_frame(read("image_dfl.dcm")).pixels.shape == (512, 512)


def test_pydicom_encoded_jpeg2000_and_rle_twins(tmp_path: Path) -> None:
    """MR_small compressed here: RLE and reversible JPEG 2000 exact, lossy JPEG 2000 close."""
    reference = decode_frame(read("MR_small.dcm")).pixels
    for syntax, kwargs in ((RLELossless, {}), (JPEG2000Lossless, {})):
        ds = read("MR_small.dcm")
        ds.compress(syntax, **kwargs)
        twin = read_dataset(save(ds, tmp_path / f"{syntax.keyword}.dcm"))
        np.testing.assert_array_equal(decode_frame(twin).pixels, reference)
    ds = read("MR_small.dcm")
    ds.compress(JPEG2000, j2k_cr=[5])
    twin = read_dataset(save(ds, tmp_path / "lossy.dcm"))
    diff = np.abs(decode_frame(twin).pixels.astype(int) - reference)
    assert 0 < diff.mean() < 0.03 * int(reference.max())
    assert is_lossy(twin)


RGB_LOSSLESS = ["SC_rgb_jpeg_gdcm.dcm", "SC_rgb_gdcm_KY.dcm"]
RGB_LOSSY = [
    "SC_rgb_dcmtk_+eb+cr.dcm",  # JPEG baseline, RGB
    "SC_rgb_dcmtk_+eb+cy+n1.dcm",  # JPEG baseline, YBR_FULL
    "SC_rgb_dcmtk_+eb+cy+n2.dcm",
    "SC_rgb_dcmtk_+eb+cy+s4.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm",  # JPEG baseline, YBR_FULL_422
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "SC_rgb_jls_lossy_line.dcm",  # JPEG-LS near-lossless
    "SC_rgb_jls_lossy_sample.dcm",
]


@pytest.mark.parametrize("name", RGB_LOSSLESS)
def test_lossless_rgb_twins(name: str) -> None:
    """JPEG lossless and JPEG 2000 SC_rgb decode to exactly the RLE original."""
    reference = render_frame(read("SC_rgb_rle.dcm")).pixels
    np.testing.assert_array_equal(render_frame(read(name)).pixels, reference)


@pytest.mark.parametrize("name", RGB_LOSSY)
def test_lossy_rgb_twins_are_close_and_flagged(name: str) -> None:
    """Lossy JPEG and JPEG-LS SC_rgb stay within a few levels on average and show LOSSY."""
    reference = render_frame(read("SC_rgb_rle.dcm")).pixels.astype(int)
    frame = render_frame(read(name))
    diff = np.abs(frame.pixels.astype(int) - reference)
    assert diff.mean() < 3.0
    if "jls" in name:
        assert diff.max() <= 2  # NEAR = 2
    assert frame.lossy
    assert lossy_description(read(name)).startswith("LOSSY")


def test_odd_sized_rgb_twins() -> None:
    """The 3x3 RGB image: big endian identical, JPEG within a few levels."""
    reference = render_frame(read("SC_rgb_small_odd.dcm")).pixels.astype(int)
    big = render_frame(read("SC_rgb_small_odd_big_endian.dcm")).pixels
    np.testing.assert_array_equal(big, reference)
    jpeg = render_frame(read("SC_rgb_small_odd_jpeg.dcm")).pixels
    assert np.abs(jpeg.astype(int) - reference).max() <= 4


def test_lossy_flag_rules() -> None:
    """Lossy Image Compression 01 flags; 00 clears a maybe-lossy syntax but not JPEG baseline."""
    assert is_lossy(read("693_J2KI.dcm"))
    ds = read("MR_small_jp2klossless.dcm")
    assert not is_lossy(ds)
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = 10
    ds.LossyImageCompressionMethod = "ISO_15444_1"
    assert lossy_description(ds) == "LOSSY 10:1 ISO_15444_1"
    baseline = read("SC_rgb_jpeg_dcmtk.dcm")
    baseline.LossyImageCompression = "00"
    assert is_lossy(baseline)


def test_truncated_pixel_data_is_a_clear_error() -> None:
    """MR_truncated: a PixelDataError naming the shortfall, not a numpy exception."""
    with pytest.raises(PixelDataError, match="less than expected"):
        render_frame(read("MR_truncated.dcm"))


def test_not_dicom_and_no_image_and_no_frame(tmp_path: Path) -> None:
    """Garbage, a plan without pixels and a missing frame each raise a titled PacsError."""
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(b"\x00\x01not dicom at all" * 10)
    with pytest.raises(UnreadableFileError):
        read_dataset(garbage)
    with pytest.raises(UnreadableFileError, match="no such file"):
        read_dataset(tmp_path / "missing.dcm")
    with pytest.raises(NoPixelDataError) as info:
        render_frame(read("rtplan.dcm"))
    assert isinstance(info.value, PacsError) and info.value.title == "No image"
    with pytest.raises(ImagingError, match="frame 3 does not exist"):
        render_frame(read("MR_small.dcm"), 2)


def test_corrupt_codestream_is_a_clear_error(tmp_path: Path) -> None:
    """A JPEG 2000 frame with its codestream cut short fails as PixelDataError naming the syntax."""
    path = bundled("MR_small_jp2klossless.dcm")
    ds = read_dataset(path)
    from pydicom.encaps import generate_frames

    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    bad = read_dataset(_reencoded(tmp_path, JPEG2000Lossless, [frame[: len(frame) // 3]]))
    with pytest.raises(PixelDataError, match="JPEG 2000"):
        render_frame(bad)


def test_missing_codec_names_the_plugins_to_install() -> None:
    """With the pylibjpeg plugins hidden, JPEG-LS fails as MissingCodecError listing plugins."""
    code = (
        "import sys\n"
        "for m in ('libjpeg', 'openjpeg', 'rle', 'pylibjpeg'): sys.modules[m] = None\n"
        "from pydicom.data import get_testdata_file\n"
        "from tui_pacs.imaging.decode import read_dataset\n"
        "from tui_pacs.imaging import render_frame\n"
        "from tui_pacs.imaging.errors import MissingCodecError\n"
        "try:\n"
        "    render_frame(read_dataset(get_testdata_file('MR_small_jpeg_ls_lossless.dcm')))\n"
        "except MissingCodecError as exc:\n"
        "    print(exc.title, '|', exc.message)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Missing decoder | cannot decode JPEG-LS Lossless")
    assert "pylibjpeg-libjpeg" in proc.stdout
