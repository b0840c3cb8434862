"""Window presets and free windows as data."""

from __future__ import annotations

import pytest

from tests.imaging.synthetic import read
from tui_pacs.imaging import render_frame
from tui_pacs.imaging.errors import ImagingError
from tui_pacs.imaging.presets import (
    CT_PRESETS,
    PresetSource,
    VOILUTFunction,
    Window,
    file_windows,
    find_preset,
    parse_window,
    presets_for,
)


def test_ct_presets_are_the_named_windows() -> None:
    """The eight CT presets carry the center/width pairs radiologists expect."""
    by_name = {p.name: p.window for p in CT_PRESETS}
    assert list(by_name) == [
        "brain",
        "subdural",
        "stroke",
        "lung",
        "mediastinum",
        "abdomen",
        "liver",
        "bone",
    ]
    assert by_name["brain"] == Window(40, 80, explanation="CT brain")
    assert by_name["lung"] is not None and by_name["lung"].window_center == -600
    assert by_name["bone"] is not None and by_name["bone"].window_width == 1800


def test_presets_for_other_modalities_come_from_the_file() -> None:
    """An MR gets its own windows (with their explanations) and auto; CT gets the eight first."""
    mr = render_frame(read("examples_overlay.dcm")).presets
    assert [p.name for p in mr] == ["file1", "file2", "auto"]
    assert mr[1].window == Window(200, 443, explanation="WINDOW2") and mr[1].label == "WINDOW2"
    ct = render_frame(read("693_J2KI.dcm")).presets
    assert [p.name for p in ct][:8] == [p.name for p in CT_PRESETS]
    assert [p.source for p in ct][8:] == [PresetSource.FILE, PresetSource.AUTO]


def test_file_windows_parse_multi_values_and_drop_bad_pairs() -> None:
    """Window Center/Width multi-values pair up; zero widths are dropped; function applies."""
    found = file_windows([40, 300, 1], [80, 1500, 0], "sigmoid", ["BRAIN", "BONE", "X"])
    assert found == (
        Window(40, 80, VOILUTFunction.SIGMOID, "BRAIN"),
        Window(300, 1500, VOILUTFunction.SIGMOID, "BONE"),
    )
    assert file_windows(None, None) == ()


def test_parse_window_and_find_preset() -> None:
    """`40,80` parses; bad text and unknown names raise ImagingError listing the choices."""
    assert parse_window("40,80") == Window(40, 80)
    assert parse_window(" -600 , 1500 ") == Window(-600, 1500)
    for bad in ("40", "a,b", "40,0"):
        with pytest.raises(ImagingError):
            parse_window(bad)
    presets = presets_for("MR", [Window(1, 2)])
    assert find_preset(presets, "FILE").name == "file1"
    with pytest.raises(ImagingError, match="choose from: file1, auto"):
        find_preset(presets, "brain")


def test_window_drag_stays_valid() -> None:
    """Dragging a window narrower than 1 stops at width 1 (LINEAR needs >= 1)."""
    assert Window(40, 80).shifted(10, -500) == Window(50, 1)
    assert Window(40, 80).label() == "C 40 W 80"
    assert Window(40.5, 80, VOILUTFunction.SIGMOID).label() == "C 40.5 W 80 SIGMOID"
