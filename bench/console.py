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
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bulkload import bulk_load  # noqa: E402
from common import REPO, Results, summarize, table  # noqa: E402
from textual import events  # noqa: E402
from textual.message import Message  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

from tui_pacs.config import Config  # noqa: E402
from tui_pacs.model import StudySort, WorklistBoard  # noqa: E402
from tui_pacs.ui import create_app, tune_gc  # noqa: E402
from tui_pacs.ui.screens.archive import ArchiveScreen  # noqa: E402
from tui_pacs.ui.widgets.filter_bar import FilterBar  # noqa: E402
from tui_pacs.ui.widgets.study_table import StudyTable  # noqa: E402
from tui_pacs.ui.widgets.worklist_pane import WorklistPane  # noqa: E402

if TYPE_CHECKING:
    from department import Department

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


# -- the worklist pane (tech desk) -----------------------------------------------------------


def prepare_worklist(base: Path, folder: Path, studies: int) -> tuple[Path, Department]:
    """The bulk index plus today's department (made once per size and day, then reused).

    Returns the department's index file (each run works on a fresh copy) and what it holds.
    """
    from department import Department, fill_department

    day = date.today().strftime("%Y%m%d")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / f"department-{studies}-{day}.json"
    index = folder / "index.sqlite3"
    if not stamp.exists():
        for old in [*folder.glob("department-*.json"), *folder.glob("index.sqlite3*")]:
            old.unlink()
        shutil.rmtree(folder / "archive", ignore_errors=True)
        copy_index(base / "index.sqlite3", index)
        print(f"adding today's department to {studies:,} studies ...", flush=True)
        made = fill_department(bench_config(folder))
        print(f"  {made.seconds:.1f} s, {made.instances} instances", flush=True)
        stamp.write_text(json.dumps(asdict(made)))
    data = json.loads(stamp.read_text())
    for key in ("received", "waiting"):
        data[key] = {int(k): tuple(v) for k, v in data[key].items()}
    return index, Department(**data)


def copy_index(source: Path, target: Path) -> None:
    """A consistent copy of an SQLite index (SQLite's backup, WAL included)."""
    for old in target.parent.glob(target.name + "*"):
        old.unlink()
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


class CpuProbe(Probe):
    """:class:`Probe` that also keeps, per phase, the most CPU time the UI thread spent between
    two turns of its event loop: the work that held the loop, whatever the machine's load (the
    wall-clock stall adds the time other processes and threads took the CPU or the GIL)."""

    def __init__(self) -> None:
        super().__init__()
        self.cpu_stalls: dict[str, float] = {}
        #: CPU seconds of the UI thread and wall seconds, per phase.
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}

    async def watch_loop(self, tick: float = 0.005) -> None:
        while self._running:
            start, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(tick)
            stall = time.perf_counter() - start - tick
            used = time.thread_time() - cpu
            if self.phase and stall > self.stalls.get(self.phase, 0.0):
                self.stalls[self.phase] = stall
            if self.phase and used > self.cpu_stalls.get(self.phase, 0.0):
                self.cpu_stalls[self.phase] = used
            if self.phase:
                self.cpu[self.phase] = self.cpu.get(self.phase, 0.0) + used
                self.wall[self.phase] = self.wall.get(self.phase, 0.0) + stall + tick


class BoardWatch:
    """Every board a worklist pane showed (by pane id), with the time its redraw started (the
    worker's board reached the UI thread) and ended (``BoardShown`` dispatched)."""

    def __init__(self) -> None:
        self.shown: list[tuple[float, str, WorklistBoard]] = []
        #: UI-thread seconds of each redraw (board handed over -> BoardShown handled).
        self.redraws: list[float] = []
        #: id(board) -> when the worker's board reached the UI thread.
        self._loaded: dict[int, float] = {}

    def hook(self, message: Message) -> None:
        if isinstance(message, WorklistPane._BoardLoaded):
            self._loaded[id(message.board)] = time.perf_counter()
        elif isinstance(message, WorklistPane.BoardShown):
            now = time.perf_counter()
            pane = getattr(getattr(message, "_sender", None), "id", None) or ""
            self.shown.append((now, pane, message.board))
            loaded = self._loaded.pop(id(message.board), None)
            if loaded is not None:
                self.redraws.append(now - loaded)

    def first_with(self, pane: str, order_id: int, instances: int, after: float) -> float | None:
        """When ``pane`` first showed ``order_id`` with at least ``instances`` images."""
        for at, shown_by, board in self.shown:
            if at < after or shown_by != pane:
                continue
            for p in board.orders:
                if p.order.id == order_id and p.instances_received >= instances:
                    return at
        return None

    def count(self, pane: str, order_id: int) -> int:
        """The images of ``order_id`` on the last board ``pane`` showed."""
        for _at, shown_by, board in reversed(self.shown):
            if shown_by == pane:
                return next(
                    (p.instances_received for p in board.orders if p.order.id == order_id), 0
                )
        return 0


def board_service_ms(config: Config, repeat: int = 7) -> tuple[float, float]:
    """The board service call alone: the first call, then the median of ``repeat`` more (ms)."""
    from tui_pacs.services.worklist import WorklistService

    service = WorklistService(config)
    t0 = time.perf_counter()
    service.board()
    first = (time.perf_counter() - t0) * 1e3
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        service.board()
        times.append((time.perf_counter() - t0) * 1e3)
    return first, statistics.median(times)


async def worklist_run(
    index: Path, dept: Department, work: Path, *, samples: int = 8, ingest_seconds: float = 6.0,
    rate: float = 20.0, timeout: float = 30.0,
) -> dict[str, Any]:  # fmt: skip
    """One session of the console on today's department; every figure in milliseconds."""
    from department import store_instance

    from tests.store.synthetic import new_uid
    from tui_pacs.services.ingest import Ingestor

    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    copy_index(index, run / "index.sqlite3")
    config = bench_config(run)
    figures: dict[str, Any] = {}
    first, warm = board_service_ms(config)
    figures["worklist: board service, first call"] = first
    figures["worklist: board service, warm (median of 7)"] = warm
    probe, watch = CpuProbe(), BoardWatch()

    def hook(message: Message) -> None:
        probe.hook(message)
        watch.hook(message)

    ingestor = Ingestor(config)
    orders = sorted(dept.received)
    series = {order_id: new_uid() for order_id in orders}
    #: Images of each order: on the first board, plus those stored since.
    images: dict[int, int] = {}

    def arrive(order_id: int) -> tuple[float, int]:
        """Store one instance for the order (as the node would): when it was committed, and
        the order's images from then on."""
        uid, patient_id, name, modality, station = dept.received[order_id]
        images[order_id] += 1
        store_instance(
            ingestor, study_uid=uid, series_uid=series[order_id], patient_id=patient_id,
            patient_name=name, modality=modality, station=station, number=images[order_id],
        )  # fmt: skip
        return time.perf_counter(), images[order_id]

    started = time.perf_counter()
    app = create_app(config, start_node=False, change_poll=0, status_poll=0, filter_delay=0)
    tune_gc()
    archive_board = probe.expect(
        lambda m: (
            isinstance(m, WorklistPane.BoardShown)
            and getattr(m._sender, "id", "") == "worklist-pane"
        )
    )
    try:
        async with app.run_test(size=SIZE, message_hook=hook) as pilot:
            watcher = asyncio.create_task(probe.watch_loop())
            probe.phase = "worklist-start"
            figures["worklist: archive pane, first board from start"] = (
                await asyncio.wait_for(archive_board, timeout) - started
            ) * 1e3
            await app.workers.wait_for_complete()
            await pilot.pause()
            desk_board = probe.expect(
                lambda m: (
                    isinstance(m, WorklistPane.BoardShown)
                    and getattr(m._sender, "id", "") == "desk-pane"
                )
            )
            t0 = time.perf_counter()
            await pilot.press("5")
            figures["worklist: desk, key to first board"] = (
                await asyncio.wait_for(desk_board, timeout) - t0
            ) * 1e3
            await app.workers.wait_for_complete()
            await pilot.pause()
            figures["worklist: UI-thread redraw, first boards (max)"] = max(watch.redraws) * 1e3
            watch.redraws.clear()
            images.update({order_id: watch.count("desk-pane", order_id) for order_id in orders})

            # Nothing happens (the reference for the stalls below).
            probe.phase = "worklist-idle"
            await asyncio.sleep(2.0)

            # An instance arrives for an order; the change feed is read at once (the console
            # reads it every second: add 0-1 s of waiting for the poll).
            probe.phase = "worklist-live"
            latencies = []
            for n in range(samples):
                order_id = orders[(n * 37) % len(orders)]
                stored, wanted = await asyncio.to_thread(arrive, order_id)
                app.poll_changes()
                deadline = time.perf_counter() + timeout
                while (at := watch.first_with("desk-pane", order_id, wanted, stored)) is None:
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"order {order_id} never showed {wanted} images")
                    await asyncio.sleep(0.002)
                latencies.append((at - stored) * 1e3)
                await app.workers.wait_for_complete()
                await pilot.pause()
            figures["worklist: instance stored -> desk shows it (poll at once)"] = (
                statistics.median(latencies)
            )
            figures["worklist: UI-thread redraw, live (median)"] = (
                statistics.median(watch.redraws) * 1e3
            )
            watch.redraws.clear()

            # Steady ingest in this process (a console hosting the node) while the change feed
            # is read every second, as the console does: the stall the tech feels, on the desk
            # and then on the archive screen (its compact pane puts flagged rows first, so a
            # flag that comes or goes moves rows).
            async def ingest_phase(phase: str, pane: str) -> None:
                probe.phase = phase
                watch.redraws.clear()
                poller = app.set_interval(1.0, app.poll_changes)
                marks: list[tuple[float, int, int]] = []
                stop = time.perf_counter() + ingest_seconds

                def ingest() -> None:
                    n = 0
                    while (now := time.perf_counter()) < stop:
                        order_id = orders[(n * 53) % len(orders)]
                        stored, wanted = arrive(order_id)
                        if n % int(rate / 2) == 0:
                            marks.append((stored, order_id, wanted))
                        n += 1
                        time.sleep(max(0.0, now + 1 / rate - time.perf_counter()))

                await asyncio.to_thread(ingest)
                await asyncio.sleep(1.5)  # the last poll and its redraw
                poller.stop()
                await app.workers.wait_for_complete()
                await pilot.pause()
                probe.phase = ""
                ends = []
                for stored, order_id, wanted in marks:
                    at = watch.first_with(pane, order_id, wanted, stored)
                    if at is not None:
                        ends.append((at - stored) * 1e3)
                if ends:
                    figures[f"{phase}: stored -> {pane} shows it (1 s poll)"] = statistics.median(
                        ends
                    )
                if watch.redraws:
                    figures[f"{phase}: UI-thread redraw (max)"] = max(watch.redraws) * 1e3

            await ingest_phase("worklist-ingest", "desk-pane")
            await pilot.press("1")
            await app.workers.wait_for_complete()
            await pilot.pause()
            await ingest_phase("worklist-ingest-archive", "worklist-pane")
            phases = (
                "worklist-start", "worklist-idle", "worklist-live", "worklist-ingest",
                "worklist-ingest-archive",
            )  # fmt: skip
            for phase in phases:
                figures[f"stall: longest during {phase}"] = probe.stalls.get(phase, 0.0) * 1e3
                figures[f"stall: UI-thread CPU, longest during {phase}"] = (
                    probe.cpu_stalls.get(phase, 0.0) * 1e3
                )
                if phase in probe.wall:
                    figures[f"load: UI-thread CPU ms per second, {phase}"] = (
                        probe.cpu[phase] / probe.wall[phase] * 1e3
                    )
            probe.stop()
            await watcher
    finally:
        ingestor.close()
        ingestor.db.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10,000 studies, 2 runs")
    parser.add_argument(
        "--part",
        choices=("all", "browse", "worklist"),
        default="all",
        help="the study list's figures, the worklist pane's, or both",
    )
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/tui-pacs-bench-console"), help="work folder"
    )
    args = parser.parse_args()
    if args.quick:
        args.studies, args.runs = 10_000, 2
    base = args.work / f"s{args.studies}"
    config = prepare(base, args.studies)
    results = Results("console", {"studies": args.studies, "runs": args.runs, "part": args.part})
    runs: list[dict[str, Any]] = [{} for _ in range(args.runs)]
    if args.part in ("all", "worklist"):
        index, dept = prepare_worklist(base, args.work / f"wl{args.studies}", args.studies)
    for i in range(args.runs):
        figures = runs[i]
        if args.part in ("all", "browse"):
            imported = import_seconds() * 1e3
            figures.update(asyncio.run(one_run(config)))
            figures["start: import tui_pacs.ui"] = imported
        if args.part in ("all", "worklist"):
            figures.update(asyncio.run(worklist_run(index, dept, args.work / "wl-run")))
        results.measurements.append({"run": i, **figures})
        print(f"run {i + 1}/{args.runs} done", flush=True)
    rows = []
    for label in runs[0]:
        values = [r[label] for r in runs if label in r]
        stats = summarize(values)
        results.summary.append({"figure": label, "unit": "ms", **stats})
        rows.append([label, f"{stats['median']:.1f}", f"{stats['min']:.1f}", f"{stats['max']:.1f}"])
    if args.part in ("all", "browse"):
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
