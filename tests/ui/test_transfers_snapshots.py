"""SVG snapshots of the transfers screen at 80x24 and 160x50 (clock, times and data frozen)."""

from __future__ import annotations

import pytest

from tests.ui.conftest import make_app
from tests.ui.screen_data import add_jobs, utc_clock  # noqa: F401
from tests.ui.test_snapshots import SIZES, then


@pytest.mark.parametrize("size", SIZES)
def test_transfers_screen(snap_compare, demo_config, utc_clock, size) -> None:  # noqa: F811
    """Jobs in every state: bars, counts, rate and status; the running job's details below."""
    add_jobs(demo_config)
    assert snap_compare(
        make_app(demo_config), terminal_size=size, run_before=then(lambda p: p.press("3"))
    )


@pytest.mark.parametrize("size", SIZES)
def test_transfers_failed_job(snap_compare, demo_config, utc_clock, size) -> None:  # noqa: F811
    """A failed job's details: sub-operation counts, DIMSE status and the error text."""
    add_jobs(demo_config)
    assert snap_compare(
        make_app(demo_config),
        terminal_size=size,
        run_before=then(lambda p: p.press("3"), lambda p: p.press("down", "down", "down")),
    )
