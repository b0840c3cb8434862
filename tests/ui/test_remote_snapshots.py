"""SVG snapshots of the remote screen and the node picker at 80x24 and 160x50 (data frozen)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.pilot import Pilot

from tests.ui.conftest import make_app
from tests.ui.screen_data import HOSPITAL, add_nodes, utc_clock  # noqa: F401
from tests.ui.test_snapshots import SIZES, then
from tui_pacs.model import StudyFilter
from tui_pacs.services.nodes import NodeRegistry
from tui_pacs.services.qr import FindQuery
from tui_pacs.ui.dialogs.node_picker import NodePickerDialog
from tui_pacs.ui.screens.remote import RemoteScreen


def show_results(pilot: Pilot[None]) -> None:
    """Post the demo archive's studies as a node's answer, and the series of the second one."""
    screen = pilot.app.screen
    assert isinstance(screen, RemoteScreen)
    browser = pilot.app.context.browser  # type: ignore[attr-defined]
    studies = list(browser.study_page(StudyFilter(), limit=100).studies)
    node = screen.nodes["hospital-pacs"]
    screen.post_message(RemoteScreen.QueryDone(node, FindQuery(), studies, False, None))


def show_series(pilot: Pilot[None]) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, RemoteScreen)
    browser = pilot.app.context.browser  # type: ignore[attr-defined]
    table = screen.query_one("#remote-studies")
    screen.action_toggle_mark()  # marks the first study, moves to the second
    study = table.current  # type: ignore[attr-defined]
    screen.series_of = study
    series = browser.series(study.study_instance_uid)
    screen.post_message(RemoteScreen.SeriesShown(study.study_instance_uid, series))


@pytest.mark.parametrize("size", SIZES)
def test_remote_screen(snap_compare, demo_config, utc_clock, size) -> None:  # noqa: F811
    """Studies a node returned (one marked), the series of the highlighted one."""
    config = replace(demo_config, nodes=(HOSPITAL,))
    add_nodes(config)
    assert snap_compare(
        make_app(config),
        terminal_size=size,
        run_before=then(lambda p: p.press("2"), show_results, show_series),
    )


@pytest.mark.parametrize("size", SIZES)
def test_send_node_picker(snap_compare, demo_config, utc_clock, size) -> None:  # noqa: F811
    """The node picker of a send: each node with its address and last echo.

    Shown over the nodes screen (the archive screen it opens over in use has its own snapshots).
    """
    config = replace(demo_config, nodes=(HOSPITAL,))
    add_nodes(config)

    def pick(pilot: Pilot[None]) -> None:
        title = "Send the study of SMITH, John Q (MR BRAIN WITHOUT CONTRAST) to…"
        pilot.app.push_screen(NodePickerDialog(title, NodeRegistry(config).nodes))

    assert snap_compare(
        make_app(config), terminal_size=size, run_before=then(lambda p: p.press("4"), pick)
    )
