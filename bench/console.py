"""Console benchmark: start-up, filter changes, paging and cursor moves over 100,000 studies.

The console runs headless under Textual's Pilot on an SQLite index filled by bench/bulkload.py
(made once and kept in the work folder). Every figure is a median over several runs:

- start: from building the app (database opened) to the first page of studies on screen, plus
  the cost of importing the console in a fresh interpreter (what ``tui-pacs`` pays first);
- filter: from a filter change to its first page on screen, for several kinds of filter;
- paging: next page, last page, first page; sorting by another column;
- cursor: from a key press to the highlighted row changing;
- stall: the longest time the UI event loop did not run (what a person feels as a freeze)
  during the filter changes, the paging, the sorts and the cursor moves.

Goals (issue 4): usable within 1 s of start, a filter's first page within 300 ms, no stalls.

    /work/venv/bin/python bench/console.py                # 100,000 studies, 5 runs
    /work/venv/bin/python bench/console.py --quick        # 10,000 studies, 2 runs
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bulkload import bulk_load  # noqa: E402
from common import REPO, Results, summarize, table  # noqa: E402
from textual import events  # noqa: E402
from textual.message import Message  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

from tui_pacs.config import Config  # noqa: E402
from tui_pacs.model import StudySort  # noqa: E402
from tui_pacs.ui import create_app, tune_gc  # noqa: E402
from tui_pacs.ui.screens.archive import ArchiveScreen  # noqa: E402
from tui_pacs.ui.widgets.filter_bar import FilterBar  # noqa: E402
from tui_pacs.ui.widgets.study_table import StudyTable  # noqa: E402

#: (label, FilterBar.set_values arguments)
FILTERS: list[tuple[str, dict[str, str]]] = [
    ("name prefix 'smi'", {"patient_name": "smi"}),
    ("given name 'maría'", {"patient_name": "maría"}),
    ("name, no match", {"patient_name": "zzzz"}),
    ("patient ID exact", {"patient_id": "P0100012345"}),
    ("accession exact", {"accession_number": "A0100054321"}),
    ("last 7 days", {"date_preset": "last-7-days"}),
    ("modality CT", {"modality": "CT"}),
    ("modality NM + last 30 days", {"modality": "NM", "date_preset": "last-30-days"}),
]
SIZE = (160, 50)
CLEAR = {
    "patient_name": "",
    "patient_id": "",
    "accession_number": "",
    "date_preset": "any",
    "modality": "",
}


def bench_config(folder: Path) -> Config:
    return replace(
        Config(),
        storage_path=folder / "archive",
        database_url=f"sqlite:///{folder / 'index.sqlite3'}",
        log_file=folder / "console.log",
        port=0,
        bind_address="127.0.0.1",
    )


def prepare(folder: Path, studies: int) -> Config:
    """The index with ``studies`` studies (made once per size, then reused)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / f"studies-{studies}"
    if not stamp.exists():
        for old in folder.glob("index.sqlite3*"):
            old.unlink()
        for old in folder.glob("studies-*"):
            old.unlink()
        print(f"loading {studies:,} studies ...", flush=True)
        summary = bulk_load(f"sqlite:///{folder / 'index.sqlite3'}", studies=studies)
        print(f"  {summary.seconds:.1f} s", flush=True)
        stamp.touch()
    return bench_config(folder)


def import_seconds() -> float:
    """Seconds a fresh interpreter takes to import the console (and build nothing)."""
    code = (
        "import time; t = time.perf_counter(); import tui_pacs.ui; print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


class Probe:
    """Times messages as the app posts them and watches the event loop for stalls."""

    def __init__(self) -> None:
        self.waiting: tuple[Callable[[Message], bool], asyncio.Future[float]] | None = None
        #: Longest stall seen in each phase ("filter", "paging" ...).
        self.stalls: dict[str, float] = {}
        self.phase = ""
        self._running = True

    def hook(self, message: Message) -> None:
        if self.waiting is not None:
            match, future = self.waiting
            if not future.done() and match(message):
                future.set_result(time.perf_counter())

    def expect(self, match: Callable[[Message], bool]) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting = (match, future)
        return future

    async def watch_loop(self, tick: float = 0.005) -> None:
        while self._running:
            start = time.perf_counter()
            await asyncio.sleep(tick)
            stall = time.perf_counter() - start - tick
            if self.phase and stall > self.stalls.get(self.phase, 0.0):
                self.stalls[self.phase] = stall

    def stop(self) -> None:
        self._running = False


def page_shown(reason: str) -> Callable[[Message], bool]:
    return lambda m: isinstance(m, ArchiveScreen.PageShown) and m.reason == reason


async def one_run(config: Config, timeout: float = 30.0) -> dict[str, Any]:
    """One session of the console; every figure in milliseconds."""
    probe = Probe()
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    app = create_app(config, start_node=False, change_poll=0, status_poll=0, filter_delay=0)
    tune_gc()  # as run_console does
    first_page = probe.expect(page_shown("start"))
    async with app.run_test(size=SIZE, message_hook=probe.hook) as pilot:
        watcher = asyncio.create_task(probe.watch_loop())
        figures["start: first page"] = (await asyncio.wait_for(first_page, timeout) - started) * 1e3
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ArchiveScreen)
        bar = screen.query_one(FilterBar)

        async def timed(label: str, reason: str, action: Callable[[], Any]) -> None:
            future = probe.expect(page_shown(reason))
            probe.phase = label.split(":")[0]
            t0 = time.perf_counter()
            result = action()
            if asyncio.iscoroutine(result):
                await result
            figures[label] = (await asyncio.wait_for(future, timeout) - t0) * 1e3
            await app.workers.wait_for_complete()
            await pilot.pause()

        for label, values in FILTERS:
            await timed(f"filter: {label}", "filter", lambda v=values: bar.set_values(**v))
            await timed("filter: cleared", "filter", lambda: bar.set_values(**CLEAR))
        for _ in range(5):
            await timed("paging: next page", "next", lambda: pilot.press("n"))
        await timed("paging: previous page", "previous", lambda: pilot.press("p"))
        await timed("paging: last page", "last", lambda: pilot.press("G"))
        await timed("paging: first page", "first", lambda: pilot.press("g"))

        def sort_by(sort: StudySort) -> None:  # as a click on the column's header
            table = screen.query_one(StudyTable)
            table.post_message(StudyTable.SortRequested(sort))

        await timed("sort: patient name", "sort", lambda: sort_by(StudySort.PATIENT_NAME))
        await timed("sort: study date", "sort", lambda: sort_by(StudySort.STUDY_DATE))
        moves = []
        probe.phase = "cursor"
        for _ in range(30):
            future = probe.expect(lambda m: isinstance(m, DataTable.RowHighlighted))
            t0 = time.perf_counter()
            app.post_message(events.Key("down", None))
            moves.append((await asyncio.wait_for(future, timeout) - t0) * 1e3)
            await pilot.pause()
        figures["cursor: move down"] = statistics.median(moves)
        for phase in ("filter", "paging", "sort", "cursor"):
            figures[f"stall: longest during {phase}"] = probe.stalls.get(phase, 0.0) * 1e3
        probe.stop()
        await watcher
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10,000 studies, 2 runs")
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/tui-pacs-bench-console"), help="work folder"
    )
    args = parser.parse_args()
    if args.quick:
        args.studies, args.runs = 10_000, 2
    config = prepare(args.work / f"s{args.studies}", args.studies)
    results = Results("console", {"studies": args.studies, "runs": args.runs})
    runs: list[dict[str, Any]] = []
    imports: list[float] = []
    for i in range(args.runs):
        imports.append(import_seconds() * 1e3)
        figures = asyncio.run(one_run(config))
        figures["start: import tui_pacs.ui"] = imports[-1]
        runs.append(figures)
        results.measurements.append({"run": i, **figures})
        print(f"run {i + 1}/{args.runs} done", flush=True)
    rows = []
    for label in runs[0]:
        values = [r[label] for r in runs if label in r]
        stats = summarize(values)
        results.summary.append({"figure": label, "unit": "ms", **stats})
        rows.append([label, f"{stats['median']:.1f}", f"{stats['min']:.1f}", f"{stats['max']:.1f}"])
    start_total = [r["start: first page"] + r["start: import tui_pacs.ui"] for r in runs]
    total = summarize(start_total)
    results.summary.append({"figure": "start: import + first page", "unit": "ms", **total})
    rows.append(
        ["start: import + first page", f"{total['median']:.1f}", f"{total['min']:.1f}",
         f"{total['max']:.1f}"]
    )  # fmt: skip
    print(f"\nconsole over {args.studies:,} studies (SQLite), {args.runs} runs, milliseconds")
    print(table(rows, ["figure", "median", "min", "max"]))
    print(f"\nraw figures: {results.write()}")


if __name__ == "__main__":
    main()
