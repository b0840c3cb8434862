"""The render service: what the viewer calls on every scroll, drag and zoom."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.imaging.synthetic import bundled, linear, raw_le, read
from tests.store.synthetic import open_ingestor
from tui_pacs.config import Config
from tui_pacs.imaging.errors import ImagingError
from tui_pacs.imaging.presets import Window
from tui_pacs.services import render as render_module
from tui_pacs.services.importer import import_paths
from tui_pacs.services.render import Renderer


def test_render_fits_the_box_and_annotates() -> None:
    """CT_small into 200x150: a 150x150 image and the corner texts of the standard's attributes."""
    result = Renderer().render(bundled("CT_small.dcm"), window="brain", size=(200, 150))
    assert result.image.size == (150, 150) and result.image.mode == "L"
    notes = result.annotations
    assert notes.patient_name == "CompressedSamples, CT1" and notes.patient_id == "1CT1"
    assert notes.study_date == "2004-01-19" and notes.window == "C 40 W 80"
    assert notes.preset == "CT brain" and notes.zoom == pytest.approx(150 / 128)
    assert (notes.orientation.left, notes.orientation.right) == ("R", "L")
    assert notes.corners()["bottom_right"][0] == "C 40 W 80 (CT brain)"
    assert notes.lossy == "" and notes.frame == (1, 1)


def test_native_render_is_the_pipeline_output() -> None:
    """Without a size the image is the native 8-bit frame, window given as text or as data."""
    stored = raw_le(read("CT_small.dcm"), "i2").reshape(128, 128)
    expected = linear(stored - 1024.0, 40, 400)
    renderer = Renderer()
    for choice in ("40,400", Window(40, 400)):
        image = renderer.render(bundled("CT_small.dcm"), window=choice).image
        np.testing.assert_array_equal(np.asarray(image), expected)
    with pytest.raises(ImagingError, match="no window preset 'lung'"):
        renderer.render(bundled("MR_small.dcm"), window="lung")


def test_a_frame_decodes_once_whatever_the_window(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Window drags and zooms reuse the decoded frame; a changed file is read again."""
    calls = []
    real = render_module.decode_frame
    monkeypatch.setattr(render_module, "decode_frame", lambda ds, i: calls.append(i) or real(ds, i))
    renderer = Renderer()
    path = bundled("MR_small.dcm")
    for c in range(5):
        renderer.render(path, window=Window(500 + 10 * c, 1000), size=(64, 64), zoom=1 + c)
    assert calls == [0]
    copy = tmp_path / "mr.dcm"
    copy.write_bytes(path.read_bytes())
    renderer.render(copy)
    os.utime(copy, ns=(1, 1))
    renderer.render(copy)
    assert calls == [0, 0, 0]


def test_prefetch_warms_the_cache_and_skips_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefetch decodes frames ahead, skips broken ones, and stops when asked."""
    renderer = Renderer()
    cine = bundled("examples_ybr_color.dcm")
    items = [(cine, k) for k in range(5)] + [(bundled("MR_truncated.dcm"), 0)]
    assert renderer.prefetch(items) == 5
    monkeypatch.setattr(
        render_module, "decode_frame", lambda *a: pytest.fail("prefetched frame decoded again")
    )
    for k in range(5):
        renderer.render(cine, k, size=(100, 100))
    assert renderer.prefetch([(cine, 9)], should_stop=lambda: True) == 0


def test_thumbnail_uses_the_middle_frame() -> None:
    """A 30-frame cine's thumbnail is its frame 16, fitted into the box."""
    renderer = Renderer()
    cine = bundled("examples_ybr_color.dcm")
    thumb = renderer.thumbnail(cine, (64, 64))
    assert thumb.size == (64, 48)
    middle = renderer.render(cine, 15, size=(64, 64), overlays=False).image
    assert thumb.tobytes() == middle.tobytes()
    assert renderer.frame_count(cine) == 30


def test_concurrent_renders_agree() -> None:
    """Worker threads rendering the same frames at once get identical images."""
    renderer = Renderer()
    path = bundled("CT_small.dcm")
    results: list[bytes] = []

    def work() -> None:
        for _ in range(5):
            results.append(renderer.render(path, window="lung", size=(90, 90)).image.tobytes())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 20 and len(set(results)) == 1


def test_archived_images_by_uid_series_and_study(sqlite_config: Config) -> None:
    """Images are named by SOP Instance UID; series thumbnails come from the middle image."""
    files = [bundled(n) for n in ("CT_small.dcm", "MR_small.dcm", "waveform_ecg.dcm")]
    with open_ingestor(sqlite_config) as ing:
        summary = import_paths(ing, files)
    assert summary.imported == 3
    renderer = Renderer(sqlite_config)
    ct = read("CT_small.dcm")
    result = renderer.render(ct.SOPInstanceUID, size=(64, 64))
    assert result.image.size == (64, 64)
    images = renderer.series_images(ct.SeriesInstanceUID)
    assert [i.sop_instance_uid for i in images] == [ct.SOPInstanceUID]
    assert renderer.render(images[0]).image.size == (128, 128)
    thumbs = renderer.study_thumbnails(ct.StudyInstanceUID, (32, 32))
    assert [t.image.size if t.image else None for t in thumbs] == [(32, 32)]
    ecg = read("waveform_ecg.dcm")
    assert len(renderer.waveform(ecg.SOPInstanceUID).channels) == 12
    ecg_thumbs = renderer.study_thumbnails(ecg.StudyInstanceUID)
    assert ecg_thumbs[0].image is None and "no image" in ecg_thumbs[0].error
    with pytest.raises(ImagingError, match="not in the archive"):
        renderer.render("1.2.3.4.5")
    with pytest.raises(ImagingError, match="needs the archive"):
        Renderer().render(ct.SOPInstanceUID)
