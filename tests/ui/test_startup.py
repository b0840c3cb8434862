"""Console start-up: a light import, the demo archive on a first run, left alone afterwards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.ui.conftest import NOW, TODAY, store_config
from tui_pacs.services.demo import STUDIES, demo_studies, desk_studies
from tui_pacs.ui.messages import ChangesArrived
from tui_pacs.ui.widgets.study_table import StudyTable

ROOT = Path(__file__).resolve().parents[2]


def test_console_import_leaves_the_network_and_pixel_stacks_out() -> None:
    """Importing the console loads no pydicom, pynetdicom or numpy (they load when first used)."""
    code = (
        "import sys, tui_pacs.ui\n"
        "print(sorted(m for m in ('pydicom', 'pynetdicom', 'numpy') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.asyncio
async def test_demo_fills_an_empty_archive(tmp_path: Path, console_factory) -> None:
    """--demo on a fresh store adds the demo studies through ingest; they show up live."""
    config = store_config(tmp_path / "fresh")
    async with console_factory(config, demo=True) as console:
        table = console.app.screen.query_one(StudyTable)
        console.app.poll_changes()
        await console.settle()
        # The demo's studies and those of today's worklist (see test_demo_worklist.py).
        total = len(STUDIES) + len(desk_studies(demo_studies(TODAY, NOW), NOW))
        assert table.row_count == total
        title = str(console.app.screen.query_one("#studies-title").render())
        assert f"Studies 1–{total} of {total}" in title


@pytest.mark.asyncio
async def test_demo_leaves_a_full_archive_alone(demo_config, console_factory) -> None:
    """--demo on an archive that holds studies adds nothing."""
    async with console_factory(demo_config, demo=True) as console:
        console.app.poll_changes()
        await console.settle()
        assert console.app.screen.query_one(StudyTable).row_count == len(STUDIES)
        assert console.posted(ChangesArrived) == []  # nothing was stored


@pytest.mark.asyncio
async def test_console_uses_a_live_node_instead_of_starting_one(
    demo_config, console_factory
) -> None:
    """A node alive by its heartbeat serves the console: none is started, the bar shows it."""
    from tui_pacs.store import heartbeat
    from tui_pacs.store.db import use_database
    from tui_pacs.ui.widgets.status_bar import NodeStatusBar

    use_database(demo_config.effective_database_url)
    heartbeat.beat("other-node", ae_title="SERVE_NODE", port=4242, associations=3, jobs_running=2)
    async with console_factory(demo_config, start_node=True) as console:
        assert console.app.hosted_node is None
        bar = str(console.app.screen.query_one(NodeStatusBar).render())
        assert "SERVE_NODE :4242" in bar and "3 assoc" in bar and "2 jobs running" in bar
        assert "this console" not in bar
        await console.pilot.press("q")  # nothing to stop: no confirmation
        await console.settle()
        assert not console.app.is_running


@pytest.mark.asyncio
async def test_console_takes_over_when_the_node_it_used_is_gone(
    demo_config, console_factory
) -> None:
    """The node the console relied on stops: the next status poll starts one in the console."""
    from tui_pacs.store import heartbeat
    from tui_pacs.store.db import use_database
    from tui_pacs.store.models import NodeHeartbeat
    from tui_pacs.ui.widgets.status_bar import NodeStatusBar

    use_database(demo_config.effective_database_url)
    heartbeat.beat("other-node", ae_title="SERVE_NODE", port=4242)
    async with console_factory(demo_config, start_node=True) as console:
        assert console.app.hosted_node is None
        NodeHeartbeat.delete().where(NodeHeartbeat.node_id == "other-node").execute()
        try:
            console.app.poll_status()
            await console.settle()
            assert console.app.hosted_node is not None
            bar = str(console.app.screen.query_one(NodeStatusBar).render())
            assert "this console" in bar
        finally:
            console.app.stop_node()
