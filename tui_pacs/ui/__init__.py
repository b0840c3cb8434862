"""The console: a Textual app over the headless services (the CLI imports this lazily).

:func:`create_app` builds the app for the CLI and for the tests alike; :func:`run_console` is
what ``tui-pacs`` with no sub-command runs.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from tui_pacs.config import Config
from tui_pacs.services.browse import Browser
from tui_pacs.ui.app import PacsApp
from tui_pacs.ui.context import ConsoleContext

__all__ = ["PacsApp", "create_app", "run_console", "tune_gc"]

#: Cyclic GC thresholds for the console (Python's default is 700, 10, 10).
GC_THRESHOLDS = (20_000, 50, 100)


def tune_gc() -> None:
    """Keep the garbage collector from freezing the screen.

    Textual allocates many short-lived objects per frame; with the default thresholds a full
    collection ran every few seconds and held the UI for 100-400 ms (bench/console.py). The
    objects alive after start-up (modules, classes, the app) are moved out of the collector's
    sight, and collections run less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(
    config: Config,
    *,
    demo: bool = False,
    start_node: bool = True,
    now: Callable[[], datetime] | None = None,
    change_poll: float = 1.0,
    status_poll: float = 2.0,
    page_size: int = 100,
    filter_delay: float = 0.15,
    detail_delay: float = 0.12,
) -> PacsApp:
    """Build the console for ``config``.

    Args:
        config: The effective configuration (its database is opened here).
        demo: Fill an empty archive with the demo studies once the console is up.
        start_node: Find the live node, starting one in-process when none is alive.
        now: The clock (tests freeze it).
        change_poll: Seconds between change feed reads (0: only when asked).
        status_poll: Seconds between heartbeat reads (0: only when asked).
        page_size: Studies per page.
        filter_delay: Typing pause before a text filter applies.
        detail_delay: Cursor rest on a series before its tags are read.
    """
    context = ConsoleContext(
        config=config,
        browser=Browser(config),
        start_node=start_node,
        demo=demo,
        change_poll=change_poll,
        status_poll=status_poll,
        page_size=page_size,
        filter_delay=filter_delay,
        detail_delay=detail_delay,
    )
    if now is not None:
        context.now = now
    return PacsApp(context)


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger(__name__).error(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
    )


def run_console(config: Config, *, demo: bool = False, graphics: str | None = None) -> None:
    """Run the console in this terminal until the person quits.

    Args:
        config: The effective configuration.
        demo: Fill an empty archive with the demo studies at start.
        graphics: ``--graphics`` (None: environment, configuration, then the probe).
    """
    from tui_pacs.errors import ConfigError
    from tui_pacs.services.node import setup_logging
    from tui_pacs.ui.graphics import resolve

    # The terminal is probed here, before Textual owns stdin.
    try:
        chosen = resolve(graphics, config.console_graphics)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    setup_logging(config, to_stderr=False)
    # Library warnings and tracebacks of dying threads would otherwise go to stderr, over the
    # screen (or be lost): they go to the log file and the log screen.
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception
    app = create_app(config, demo=demo)
    logging.getLogger(__name__).info("graphics: %s (%s)", chosen.mode.value, chosen.reason)
    tune_gc()
    try:
        app.run()
    finally:
        app.stop_node()
