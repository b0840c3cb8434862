"""Query benchmark: study-level C-FIND with DCMTK findscu against tui-pacs serve and Orthanc.

Both peers hold the same studies: :func:`bench.bulkload.bulk_load` fills our index, and the same
rows, one tiny instance per series, are stored into Orthanc through its REST API
(:mod:`bench.orthanc_load`), so Orthanc's own index is what Orthanc queries. Both are cached under
``bench/results/query-cache/`` keyed by the data set parameters, so only the first run loads.

Five queries, each asking for the same study-level return keys: exact PatientID, PatientName
prefix wildcard, a one-month StudyDate range, ModalitiesInStudy plus that month, and an
AccessionNumber prefix that matches exactly 1,000 studies. Every findscu call is checked: both
peers must return the same Study Instance UIDs. Prints medians over ``--runs`` runs, the ratios
ours/Orthanc, and the CPU each server spends per returned study of the 1,000-result query
(utime+stime from /proc around it).

Both indexes are SQLite files, and neither tui-pacs nor Orthanc ever runs ANALYZE on them, while
SQLite's query planner needs its statistics to choose well among several usable indexes (Orthanc's
lookups of one tag value take about a second at this size without them, milliseconds with them).
So the benchmark measures both states, each in its own pair of server runs: ``as-left`` (no
statistics, as ingest leaves both indexes) and ``analyzed`` (ANALYZE run on both).

    /work/venv/bin/python bench/query.py            # 100,000 studies, 7 runs
    /work/venv/bin/python bench/query.py --quick    # smoke run: 5,000 studies, 3 runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bulkload import bulk_load  # noqa: E402
from common import (  # noqa: E402
    DCMTK,
    RESULTS,
    Orthanc,
    OrthancProcess,
    OurNode,
    Results,
    dcmtk_env,
    fmt_ratio,
    paired_ratio,
    ratio,
    summarize,
    table,
)
from orthanc_load import FAST_LOAD_SETTINGS, post_instances, series_rows  # noqa: E402

from tui_pacs.store.db import open_database  # noqa: E402

#: Bump when the loaded data would change for the same parameters.
DATASET_VERSION = 1
#: The newest study date: fixed, so the data set (and its cache) does not change with the day.
TODAY = date(2024, 12, 31)
YEARS = 10
SEED = 1
#: What every query asks back (all of them in Orthanc's index: no file reads on its side).
RETURN_KEYS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "StudyDescription",
    "ReferringPhysicianName",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
    "StudyInstanceUID",
)
LARGE = "1,000 results"
#: Queries with fewer matches than this are timed ``--small-repeat`` times per run.
SMALL = 100
#: Index statistics states: ANALYZE run on both indexes or not.
STATES = {"as-left": False, "analyzed": True}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Query:
    """One benchmark query: a label and the matching keys (the return keys are added)."""

    name: str
    keys: dict[str, str]
    goal: float  # ours/Orthanc time ratio to stay under


# -- data sets -----------------------------------------------------------------------------------


def dataset_key(studies: int) -> str:
    return f"n{studies}-seed{SEED}-{TODAY:%Y%m%d}-{YEARS}y-v{DATASET_VERSION}"


def prepare_ours(cache: Path, studies: int, database: str | None) -> tuple[str, str]:
    """Our index with the data set: (database URL, how it got there)."""
    if database:
        db = open_database(database)
        try:
            have = db.execute_sql("SELECT count(*) FROM study").fetchone()[0]
            last = f"1.2.826.0.1.3680043.8.498.9.{SEED}.{studies}"
            p = db.param
            marker = db.execute_sql(
                f"SELECT count(*) FROM study WHERE study_instance_uid = {p}", (last,)
            ).fetchone()[0]
        finally:
            db.close()
        if have == studies and marker == 1:
            return database, "already loaded"
        if have:
            raise SystemExit(
                f"--database holds {have} other studies: give an empty database (it is filled "
                f"with {studies} synthetic studies and kept for later runs)"
            )
        summary = bulk_load(database, studies=studies, seed=SEED, today=TODAY, years=YEARS)
        return database, f"loaded in {summary.seconds:.1f} s"
    url = f"sqlite:///{cache / 'index.sqlite3'}"
    done = cache / "ours.json"
    if done.exists():
        info = json.loads(done.read_text())
        return url, f"cached (loaded in {info['seconds']:.1f} s)"
    for suffix in ("", "-wal", "-shm"):
        (cache / f"index.sqlite3{suffix}").unlink(missing_ok=True)
    summary = bulk_load(url, studies=studies, seed=SEED, today=TODAY, years=YEARS)
    done.write_text(json.dumps({"seconds": summary.seconds, "series": summary.series}))
    return url, f"loaded in {summary.seconds:.1f} s"


def prepare_orthanc(cache: Path, our_url: str, studies: int, connections: int) -> str:
    """Orthanc's storage with the same studies, loaded once; returns how it got there."""
    folder = cache / "orthanc"
    done = cache / "orthanc.json"
    if done.exists():
        info = json.loads(done.read_text())
        return (
            f"cached (loaded {info['instances']} instances in {info['seconds']:.0f} s, "
            f"{info['rate']:.0f}/s)"
        )
    shutil.rmtree(folder, ignore_errors=True)
    db = open_database(our_url)
    try:
        with OrthancProcess(folder, extra=dict(FAST_LOAD_SETTINGS)) as orthanc:
            print(
                f"loading Orthanc: one instance per series, {connections} connections", flush=True
            )
            summary = post_instances(orthanc.http_port, series_rows(db), connections=connections)
            stats = orthanc.get("/statistics")
            assert isinstance(stats, dict)
    finally:
        db.close()
    if stats["CountStudies"] != studies or stats["CountInstances"] != summary.instances:
        raise SystemExit(
            f"Orthanc holds {stats['CountStudies']} studies / {stats['CountInstances']} "
            f"instances after loading {studies} / {summary.instances}"
        )
    done.write_text(
        json.dumps(
            {"instances": summary.instances, "seconds": summary.seconds, "rate": summary.rate}
        )
    )
    return f"loaded {summary.instances} instances in {summary.seconds:.0f} s ({summary.rate:.0f}/s)"


def plan_queries(url: str, studies: int) -> list[Query]:
    """The five queries, their values picked from the data set so that each matches something."""
    db = open_database(url)
    try:
        p = db.param
        with_studies = db.execute_sql(
            "SELECT count(*) FROM patient WHERE number_of_patient_related_studies > 0"
        ).fetchone()[0]
        rows = db.execute_sql(
            "SELECT patient_id, patient_name FROM patient "
            f"WHERE number_of_patient_related_studies > 0 ORDER BY patient_id LIMIT 200 OFFSET {p}",
            (with_studies // 2,),
        ).fetchall()
        patient_id = rows[0][0]
        # An ASCII name, so that no peer's accent folding makes the answers differ.
        name = next(n for _, n in rows if n.isascii() and len(n.split("^")[1]) >= 2)
        family, given = name.split("^")[:2]
        accession = f"A{SEED:02d}{1000:08d}"[:8] + "*"
        large = db.execute_sql(
            f"SELECT count(*) FROM study WHERE accession_number LIKE {p}",
            (accession.replace("*", "%"),),
        ).fetchone()[0]
    finally:
        db.close()
    if large != 1000:
        raise SystemExit(f"AccessionNumber {accession} matches {large} studies, not 1,000")
    year = TODAY.year - YEARS // 2
    month = f"{year}0301-{year}0331"
    return [
        Query("exact PatientID", {"PatientID": patient_id}, 1.0),
        Query("PatientName prefix*", {"PatientName": f"{family}^{given[:2].upper()}*"}, 1.0),
        Query("StudyDate one month", {"StudyDate": month}, 1.0),
        Query("MR + one month", {"ModalitiesInStudy": "MR", "StudyDate": month}, 1.0),
        Query(LARGE, {"AccessionNumber": accession}, 2.0),
    ]


def set_statistics(index: Path, analyzed: bool) -> None:
    """Run ANALYZE on a SQLite index, or remove its statistics (what SQLite has without it)."""
    con = sqlite3.connect(index)
    try:
        if analyzed:
            con.execute("ANALYZE")
        else:
            tables = con.execute(
                "SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'"
            ).fetchall()
            for (name,) in tables:
                con.execute(f"DELETE FROM {name}")
        con.commit()
    finally:
        con.close()


# -- measuring -----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its children still running (threads included)."""
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


class FindError(RuntimeError):
    """findscu failed."""


def findscu(ae_title: str, port: int, query: Query, out: Path) -> tuple[float, list[str]]:
    """Run one study-root C-FIND; returns (wall seconds, Study Instance UIDs returned)."""
    keys = {"QueryRetrieveLevel": "STUDY", **dict.fromkeys(RETURN_KEYS, ""), **query.keys}
    cmd = [str(DCMTK / "findscu"), "-S", "-aet", "BENCH", "-aec", ae_title, "-Xs", str(out)]
    for keyword, value in keys.items():
        cmd += ["-k", f"{keyword}={value}" if value else keyword]
    cmd += ["127.0.0.1", str(port)]
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dcmtk_env(), timeout=600)
    seconds = time.perf_counter() - started
    if proc.returncode != 0 or not out.exists():
        raise FindError(f"findscu to {ae_title} exited {proc.returncode}: {proc.stderr[-1500:]}")
    uids = [
        (e.text or "").strip()
        for e in ET.parse(out).getroot().iter("element")
        if e.get("tag") == "0020,000d"
    ]
    return seconds, uids


@dataclass
class Server:
    name: str
    ae_title: str
    port: int
    pid: int


def measure(
    servers: list[Server],
    queries: list[Query],
    runs: int,
    scratch: Path,
    results: Results,
    state: str,
    small_repeat: int = 1,
) -> tuple[dict[tuple[str, str], list[float]], dict[str, list[float]], dict[str, int]]:
    """Time every query on every server ``runs`` times after one checked warm-up pass.

    A query with fewer than :data:`SMALL` matches (a ~0.1 s call, at the mercy of a noisy
    machine) is timed ``small_repeat`` times per run, the servers taking turns.

    Returns:
        Seconds per (query, server), CPU seconds per returned study of the large query per
        server, and the number of matches per query.
    """
    times: dict[tuple[str, str], list[float]] = {}
    cpu: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for run in range(-1, runs):  # run -1: warm-up, checked but not counted
        for query in queries:
            small = counts.get(query.name, SMALL) < SMALL
            for rep in range(small_repeat if run >= 0 and small else 1):
                order = servers if (run + rep) % 2 == 0 else servers[::-1]
                answers: dict[str, list[str]] = {}
                for server in order:
                    before = cpu_seconds(server.pid)
                    seconds, uids = findscu(
                        server.ae_title, server.port, query, scratch / "rsp.xml"
                    )
                    used = cpu_seconds(server.pid) - before
                    answers[server.name] = uids
                    if run < 0:
                        continue
                    times.setdefault((query.name, server.name), []).append(seconds)
                    if query.name == LARGE and uids:
                        cpu.setdefault(server.name, []).append(used / len(uids))
                    results.measurements.append(
                        {
                            "state": state,
                            "run": run,
                            "query": query.name,
                            "server": server.name,
                            "seconds": seconds,
                            "matches": len(uids),
                            "cpu_seconds": used,
                        }
                    )
                check_same(query, answers)
                counts[query.name] = len(next(iter(answers.values())))
        label = "warm-up" if run < 0 else f"run {run + 1}/{runs}"
        print(f"{label} done", flush=True)
    return times, cpu, counts


def check_same(query: Query, answers: dict[str, list[str]]) -> None:
    """Both servers returned the same studies, and some."""
    (first, mine), *others = answers.items()
    for name, uids in others:
        if sorted(uids) != sorted(mine):
            raise SystemExit(
                f"{query.name}: {first} returned {len(mine)} studies, {name} "
                f"{len(uids)} (or other ones): the peers do not hold or match the same"
            )
    if not mine:
        raise SystemExit(f"{query.name}: no peer returned anything")


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--studies", type=int, default=100_000, help="studies in the data set (100000)")
    p.add_argument("--runs", type=int, default=7, help="timed runs of every query (7)")
    p.add_argument(
        "--small-repeat",
        type=int,
        default=5,
        help=f"timings per run of a query with fewer than {SMALL} matches (5)",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 5,000 studies, 3 runs")
    p.add_argument(
        "--database",
        default=None,
        metavar="URL",
        help="our index in this (empty, or already loaded) PostgreSQL database instead of SQLite",
    )
    p.add_argument(
        "--index-stats",
        choices=[*STATES, "both"],
        default="both",
        help="measure with index statistics as left by ingest, after ANALYZE, or both (default)",
    )
    p.add_argument(
        "--load-connections", type=int, default=4, help="parallel REST uploads to Orthanc (4)"
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=RESULTS / "query-cache",
        help="where loaded data sets are kept (default: bench/results/query-cache)",
    )
    p.add_argument("--label", default="", help="free text saved with the results")
    args = p.parse_args(argv)
    if args.quick:
        args.studies, args.runs = 5000, 3
    if args.studies < 2000:
        p.error("--studies must be at least 2000 (the large query matches 1,000 of them)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cache: Path = args.cache_dir / dataset_key(args.studies)
    cache.mkdir(parents=True, exist_ok=True)
    results = Results(
        "query",
        {k: v for k, v in vars(args).items() if k != "cache_dir"} | {"cache": str(cache)},
    )
    total_started = time.monotonic()
    # Orthanc is loaded from our SQLite rows, so our SQLite copy exists even with --database.
    sqlite_url, how = prepare_ours(cache, args.studies, None)
    print(f"our index (SQLite): {how}", flush=True)
    our_url = sqlite_url
    if args.database:
        our_url, how = prepare_ours(cache, args.studies, args.database)
        print(f"our index (--database): {how}", flush=True)
    how = prepare_orthanc(cache, sqlite_url, args.studies, args.load_connections)
    print(f"Orthanc: {how}", flush=True)
    queries = plan_queries(sqlite_url, args.studies)
    print("queries:")
    for q in queries:
        print(f"  {q.name}: " + " ".join(f"{k}={v}" for k, v in q.keys.items()))
    states = list(STATES) if args.index_stats == "both" else [args.index_stats]
    for state in states:
        print(f"\n-- index statistics: {state}", flush=True)
        if our_url == sqlite_url:
            set_statistics(cache / "index.sqlite3", STATES[state])
        set_statistics(cache / "orthanc" / "storage" / "index", STATES[state])
        times, cpu, counts = run_servers(args, cache, our_url, queries, results, state)
        report(args, state, queries, times, cpu, counts, results)
    results.summary.append({"total_seconds": time.monotonic() - total_started})
    path = results.write()
    print(f"\nraw figures: {path}")
    return 0


def run_servers(
    args: argparse.Namespace,
    cache: Path,
    our_url: str,
    queries: list[Query],
    results: Results,
    state: str,
) -> tuple[dict[tuple[str, str], list[float]], dict[str, list[float]], dict[str, int]]:
    """Start both servers on the loaded data, measure, stop them."""
    scratch = cache.parent / "run"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    ours = OurNode(scratch / "tui-pacs", {"storage": {"database_url": our_url}})
    try:
        orthanc = Orthanc(cache / "orthanc")
    except BaseException:
        ours.stop()
        raise
    try:
        stats = orthanc.peer.get("/statistics")
        assert isinstance(stats, dict)
        if stats["CountStudies"] != args.studies:
            raise SystemExit(f"cached Orthanc holds {stats['CountStudies']} studies")
        servers = [
            Server("tui-pacs", ours.ae_title, ours.port, ours.pid),
            Server("orthanc", orthanc.ae_title, orthanc.port, orthanc.peer.proc.pid),  # type: ignore[union-attr]
        ]
        return measure(servers, queries, args.runs, scratch, results, state, args.small_repeat)
    finally:
        ours.stop()
        orthanc.stop()


def report(
    args: argparse.Namespace,
    state: str,
    queries: list[Query],
    times: dict[tuple[str, str], list[float]],
    cpu: dict[str, list[float]],
    counts: dict[str, int],
    results: Results,
) -> None:
    """Print the medians, ratios and per-result CPU, and keep them in ``results.summary``."""
    rows = []
    for q in queries:
        ours, theirs = times[(q.name, "tui-pacs")], times[(q.name, "orthanc")]
        mo, mt = statistics.median(ours), statistics.median(theirs)
        r, pr = ratio(mo, mt), paired_ratio(ours, theirs)
        met = "yes" if r is not None and r <= q.goal else "NO"
        rows.append(
            [
                q.name,
                str(counts[q.name]),
                f"{mo * 1e3:.1f}",
                f"{mt * 1e3:.1f}",
                fmt_ratio(r),
                fmt_ratio(pr),
                f"<= {q.goal:g}x",
                met,
            ]
        )
        results.summary.append(
            {
                "state": state,
                "query": q.name,
                "keys": q.keys,
                "matches": counts[q.name],
                "tui-pacs": summarize(ours),
                "orthanc": summarize(theirs),
                "ours_over_orthanc": r,
                "ours_over_orthanc_paired": pr,
                "goal": q.goal,
            }
        )
    print(
        f"\n{args.studies} studies, study-root C-FIND with findscu, wall ms (median of "
        f"{args.runs} runs; x{args.small_repeat} for fewer than {SMALL} matches), our index on "
        f"{'PostgreSQL' if args.database else 'SQLite'}, index statistics {state}"
    )
    print(
        table(
            rows,
            ["query", "matches", "tui-pacs", "orthanc", "ours/Orthanc", "paired", "goal", "met"],
        )
    )
    cpu_rows = []
    for name, values in cpu.items():
        s = summarize(values)
        cpu_rows.append(
            [name, f"{s['median'] * 1e3:.3f}", f"{s['min'] * 1e3:.3f}", f"{s['max'] * 1e3:.3f}"]
        )
        results.summary.append({"state": state, "cpu_per_match": name, **s})
    print(f"\nserver CPU per returned study, {LARGE} query (utime+stime, ms; 10 ms clock ticks)")
    print(table(cpu_rows, ["server", "median", "min", "max"]))


if __name__ == "__main__":
    sys.exit(main())
