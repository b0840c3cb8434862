"""The demo archive never holds an image later than now, and its worklist shows every flag."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from tests.ui.conftest import store_config
from tui_pacs.model import OrderFlag, OrderStatus, WorklistFilter
from tui_pacs.services.demo import (
    DESK_ORDERS,
    STUDIES,
    demo_datasets,
    demo_studies,
    desk_studies,
    fill_demo,
)

DAY = date(2026, 11, 20)


def _latest(now: datetime) -> datetime:
    """The latest content date/time of every image the worklist demo makes at ``now``."""
    studies = demo_studies(now.date(), now)
    studies += desk_studies(studies, now)
    return max(
        datetime.strptime(f"{ds.ContentDate}{ds.ContentTime}", "%Y%m%d%H%M%S")
        for ds in demo_datasets(now.date(), studies=studies)
    )


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 11, 20, 0, 20), datetime(2026, 11, 20, 7, 40), datetime(2026, 11, 20, 23, 50)],
    ids=["just-after-midnight", "early-morning", "late-evening"],
)
def test_no_image_later_than_now(now: datetime) -> None:
    """Studies of today whose hour has not come yet move back before now (images included)."""
    assert _latest(now) <= now


def test_a_given_day_keeps_its_hours() -> None:
    """Without a clock time, the demo of a given day keeps the hours of STUDIES (the tests'
    frozen archive does not move)."""
    hours = [study.start.hour for study in demo_studies(DAY)]
    assert hours == [hour for *_rest, hour in STUDIES]


def test_demo_worklist_shows_every_flag(tmp_path: Path) -> None:
    """--demo's worklist at noon: orders spread over the day (done, in progress, later), every
    kind of flag, and one study of today that no order claims."""
    now = datetime(2026, 11, 20, 12, 0)
    config = store_config(tmp_path / "store")
    summary = fill_demo(config, today=DAY, now=now, worklist=True)
    assert summary.orders == len(DESK_ORDERS)
    from tui_pacs.services.worklist import WorklistService

    board = WorklistService(config).board(WorklistFilter(date_from="20261120", date_to="20261120"))
    flags = {flag for p in board.orders for flag in p.flags}
    assert flags == set(OrderFlag)
    assert len(board.unmatched_studies) == 1
    statuses = {p.order.status for p in board.orders}
    assert {OrderStatus.COMPLETED, OrderStatus.IN_PROGRESS, OrderStatus.SCHEDULED} <= statuses
    times = sorted(p.order.scheduled_procedure_step_start_time for p in board.orders)
    assert times[0] < "1200" < times[-1]  # some done, some scheduled later
    progress = {p.order.patient_id: p for p in board.orders}
    assert progress["DEMO0006"].mpps_status == "IN PROGRESS"  # images still coming
    assert progress["DEMO0006"].instances_received == 1
