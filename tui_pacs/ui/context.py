"""What the console's screens are given: the configuration, the services, the clock, the tunings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from tui_pacs.config import Config
from tui_pacs.services.browse import Browser


def _now() -> datetime:
    return datetime.now()


@dataclass(slots=True)
class ConsoleContext:
    """Dependencies and settings of one console (the tests freeze the clock and the pollers here).

    Attributes:
        config: The effective configuration.
        browser: Browses the local archive.
        now: Local wall-clock time (frozen in snapshot tests).
        start_node: Look for a live node and start one in-process when none is alive.
        demo: Fill an empty archive with the demo studies at start.
        change_poll: Seconds between two reads of the change feed (0: only when asked).
        status_poll: Seconds between two reads of the node heartbeat (0: only when asked).
        page_size: Studies per page of the study list.
        filter_delay: Seconds of typing pause before a text filter is applied.
        detail_delay: Seconds the cursor must rest on a series before its tags are read.
    """

    config: Config
    browser: Browser
    now: Callable[[], datetime] = field(default=_now)
    start_node: bool = True
    demo: bool = False
    change_poll: float = 1.0
    status_poll: float = 2.0
    page_size: int = 100
    filter_delay: float = 0.15
    detail_delay: float = 0.12

    def today(self) -> date:
        """Today's date by the console's clock."""
        return self.now().date()
