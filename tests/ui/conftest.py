"""Console test fixtures: a demo archive made once, copied per test; apps with a frozen clock."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message
from textual.pilot import Pilot
from textual.worker import WorkerCancelled, WorkerState

from tui_pacs.config import Config
from tui_pacs.services.demo import fill_demo
from tui_pacs.store.db import database_proxy
from tui_pacs.ui import PacsApp, create_app

#: The day the demo archive and the console clock are frozen at.
TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 12, 0, 0)


def store_config(folder: Path) -> Config:
    """A config whose archive, SQLite index and log live in ``folder``."""
    return replace(
        Config(),
        ae_title="TEST_PACS",
        bind_address="127.0.0.1",
        port=0,
        storage_path=folder / "archive",
        database_url=f"sqlite:///{folder / 'index.sqlite3'}",
        log_file=Path("/var/log/tui-pacs/console.log"),
    )


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo archive (20 studies, 12 patients) made once per session."""
    folder = tmp_path_factory.mktemp("demo-template")
    fill_demo(store_config(folder), today=TODAY)
    db = database_proxy.obj
    if db is not None:
        db.close()
    database_proxy.initialize(None)
    return folder


@pytest.fixture
def demo_config(demo_template: Path, tmp_path: Path) -> Config:
    """A private copy of the demo archive."""
    folder = tmp_path / "store"
    shutil.copytree(demo_template, folder)
    return store_config(folder)


def _busy(app: PacsApp) -> bool:
    return any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in app.workers)


async def settle_pilot(pilot: Pilot[None], rounds: int = 50) -> None:
    """Wait until no worker runs and the messages they posted are handled, idle twice in a row
    (a handler may start a worker after a refresh, as the preview does when its pane is laid out).
    """
    app = pilot.app
    for _ in range(rounds):
        # An exclusive worker replaced by a newer one ends cancelled: normal, keep waiting.
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()
        if not _busy(app):
            await pilot.pause()
            if not _busy(app):
                return
    raise AssertionError("workers still running")


@dataclass
class Console:
    """A running console under Pilot and the messages it has posted."""

    app: PacsApp
    pilot: Pilot[None]
    messages: list[Message] = field(default_factory=list)

    def posted(self, kind: type[Message]) -> list[Any]:
        """Messages of ``kind`` posted so far."""
        return [m for m in self.messages if isinstance(m, kind)]

    async def settle(self, rounds: int = 50) -> None:
        """Wait until no worker runs and the messages they posted are handled."""
        await settle_pilot(self.pilot, rounds)

    async def type(self, text: str) -> None:
        """Type ``text`` key by key into the focused widget."""
        for char in text:
            await self.pilot.press(char if char != " " else "space")


def make_app(config: Config, **overrides: Any) -> PacsApp:
    """The console with pollers off (tests trigger them), no node, the clock frozen."""
    options: dict[str, Any] = {
        "start_node": False,
        "change_poll": 0,
        "status_poll": 0,
        "now": lambda: NOW,
        "filter_delay": 0.0,
        "detail_delay": 0.0,
    }
    options.update(overrides)
    return create_app(config, **options)


@pytest.fixture
def console_factory() -> Iterator[Callable[..., Any]]:
    """``async with console_factory(config, size=(w, h), **options) as console``."""
    from contextlib import asynccontextmanager

    apps: list[PacsApp] = []

    @asynccontextmanager
    async def start(config: Config, size: tuple[int, int] = (160, 50), **overrides: Any):
        app = make_app(config, **overrides)
        apps.append(app)
        messages: list[Message] = []
        async with app.run_test(size=size, message_hook=messages.append) as pilot:
            console = Console(app, pilot, messages)
            await console.settle()
            yield console
        app.stop_node()

    yield start
    for app in apps:
        app.stop_node()
