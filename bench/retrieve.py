"""Retrieve benchmark: a 500-instance CT study from Orthanc into tui-pacs by C-MOVE and by C-GET.

Orthanc holds one synthetic study (500 CT instances of 512 x 512 pixels, bench/synth.py). Each
run retrieves it four ways, in a rotating order, each into an empty receiver:

- ``tui-pacs move``: ``tui-pacs retrieve orthanc --study UID --method move`` against a running
  ``tui-pacs serve`` (the node's job asks Orthanc to C-MOVE to our AE; the instances arrive over
  the node's listener and are archived, fsynced and indexed);
- ``tui-pacs get``: the same with ``--method get`` (the job's C-GET SCU stores what arrives);
- ``storescp move``: DCMTK ``movescu`` asking Orthanc to C-MOVE to DCMTK ``storescp``;
- ``getscu get``: DCMTK ``getscu`` retrieving it by C-GET into a folder.

Our figure is the job's own duration (claimed to finished, from the job table); the CLI's wall
time, which adds Python start-up and the node noticing the queued job (it polls once a second
for jobs queued by another process), is shown beside it. DCMTK's figure is the tool's wall time.
Every measurement checks that all 500 instances arrived. Prints instances/s medians and ratios.

    /work/venv/bin/python bench/retrieve.py            # 5 runs
    /work/venv/bin/python bench/retrieve.py --quick    # smoke run: 1 run
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    DCMTK,
    ORTHANC_DEFAULTS_RESTORED,
    OrthancProcess,
    Results,
    StorescpProcess,
    dcmtk_env,
    fmt_ratio,
    free_port,
    paired_ratio,
    ratio,
    storescu,
    summarize,
    table,
    tui_pacs_command,
    wait_for_port,
    write_node_config,
)
from synth import generate  # noqa: E402

METHODS = ("tui-pacs move", "tui-pacs get", "storescp move", "getscu get")
#: Which DCMTK measurement each of ours is compared with.
PEER_OF = {"tui-pacs move": "storescp move", "tui-pacs get": "getscu get"}


@dataclass
class Measurement:
    seconds: float
    #: Wall time of the command that asked for it (our CLI); None for DCMTK.
    wall: float | None = None


class RetrieveError(RuntimeError):
    """A retrieve did not bring every instance."""


class Node:
    """``tui-pacs serve`` on a fresh archive and SQLite index, Orthanc in its node registry."""

    ae_title = "TUI_PACS"

    def __init__(self, folder: Path, orthanc: OrthancProcess) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.folder = folder
        self.port = free_port()
        self.config = write_node_config(folder, self.port, {})
        with self.config.open("a") as f:
            f.write(
                "\n[[nodes]]\n"
                'name = "orthanc"\n'
                f'ae_title = "{orthanc.ae_title}"\n'
                'host = "127.0.0.1"\n'
                f"port = {orthanc.dicom_port}\n"
            )
        self._stderr = open(folder / "serve.stderr", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [*tui_pacs_command(), "--config", str(self.config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        wait_for_port(self.port, 60, self.proc)

    def stored(self) -> int:
        """Index rows and archived files must agree; the smaller is what really got stored."""
        con = sqlite3.connect(f"file:{self.folder / 'index.sqlite3'}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT count(*) FROM instance").fetchone()[0]
        finally:
            con.close()
        archive = self.folder / "archive"
        files = sum(
            1 for p in archive.rglob("*.dcm") if ".incoming" not in p.relative_to(archive).parts
        )
        return min(rows, files)

    def last_job(self) -> dict[str, object]:
        con = sqlite3.connect(f"file:{self.folder / 'index.sqlite3'}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        try:
            row = con.execute("SELECT * FROM job ORDER BY id DESC LIMIT 1").fetchone()
        finally:
            con.close()
        return dict(row)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


def _put(orthanc: OrthancProcess, path: str, body: object) -> None:
    req = urllib.request.Request(orthanc.url + path, data=json.dumps(body).encode(), method="PUT")
    with urllib.request.urlopen(req, timeout=60) as rsp:
        rsp.read()


def _when(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def ours(
    method: str, orthanc: OrthancProcess, study_uid: str, folder: Path, count: int
) -> Measurement:
    """``tui-pacs retrieve`` through a fresh running node; the job's duration and the CLI's."""
    node = Node(folder, orthanc)
    try:
        # Orthanc must know where TUI_PACS listens now (a C-MOVE destination).
        _put(
            orthanc,
            "/modalities/tuipacs",
            {"AET": node.ae_title, "Host": "127.0.0.1", "Port": node.port},
        )
        cmd = [
            *tui_pacs_command(),
            "--config",
            str(node.config),
            "retrieve",
            "orthanc",
            "--study",
            study_uid,
            "--method",
            method,
            "--quiet",
        ]
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - started
        job = node.last_job()
        stored = node.stored()
    finally:
        node.stop()
    if proc.returncode != 0 or job["state"] != "completed" or stored != count:
        raise RetrieveError(
            f"tui-pacs retrieve --method {method}: exit {proc.returncode}, job {job['state']} "
            f"({job['completed']} completed, {job['failed']} failed: {job['error']}), "
            f"{stored} of {count} stored\n{proc.stderr[-1500:]}"
        )
    seconds = (_when(job["finished_at"]) - _when(job["started_at"])).total_seconds()
    return Measurement(seconds, wall)


def dcmtk_move(
    orthanc: OrthancProcess, storescp: StorescpProcess, study_uid: str, count: int
) -> Measurement:
    """``movescu`` asking Orthanc to C-MOVE the study to ``storescp``."""
    shutil.rmtree(storescp.folder, ignore_errors=True)
    storescp.folder.mkdir(parents=True)
    cmd = [
        str(DCMTK / "movescu"),
        "-S",
        "-aet",
        "MOVESCU",
        "-aec",
        orthanc.ae_title,
        "-aem",
        storescp.ae_title,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study_uid}",
        "127.0.0.1",
        str(orthanc.dicom_port),
    ]
    return _dcmtk(cmd, lambda: len(storescp.files()), count)


def dcmtk_get(orthanc: OrthancProcess, folder: Path, study_uid: str, count: int) -> Measurement:
    """``getscu`` retrieving the study by C-GET into ``folder``."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cmd = [
        str(DCMTK / "getscu"),
        "-S",
        "-aet",
        "GETSCU",
        "-aec",
        orthanc.ae_title,
        "-od",
        str(folder),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study_uid}",
        "127.0.0.1",
        str(orthanc.dicom_port),
    ]
    return _dcmtk(cmd, lambda: sum(1 for p in folder.iterdir() if p.is_file()), count)


def _dcmtk(cmd: list[str], stored: Callable[[], int], count: int) -> Measurement:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dcmtk_env(), timeout=900)
    seconds = time.perf_counter() - started
    got = stored()
    if proc.returncode != 0 or got != count:
        raise RetrieveError(
            f"{Path(cmd[0]).name}: exit {proc.returncode}, {got} of {count} stored\n"
            f"{proc.stderr[-1500:]}"
        )
    return Measurement(seconds)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=500, help="instances in the study (500)")
    p.add_argument("--rows", type=int, default=512, help="image size (512 x 512)")
    p.add_argument("--runs", type=int, default=5, help="measurements per method (5; at least 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: 100 instances, 1 run")
    p.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated subset of: {', '.join(METHODS)}",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tui-pacs-bench",
        help="where the data set is cached and the peers store (default: $TMPDIR/tui-pacs-bench)",
    )
    p.add_argument("--label", default="", help="free text saved with the results")
    args = p.parse_args(argv)
    if args.quick:
        args.count, args.runs = 100, 1
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        p.error(f"unknown method(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work: Path = args.work_dir / "retrieve"
    results = Results(
        "retrieve",
        {k: v for k, v in vars(args).items() if k != "work_dir"} | {"work_dir": str(work)},
    )
    total_started = time.monotonic()
    parts = generate(args.work_dir / "data" / f"ct{args.rows}-{args.count}", args.rows, args.count)
    from pydicom import dcmread

    first = next(p for part in parts for p in sorted(part.iterdir()) if p.suffix == ".dcm")
    study_uid = str(dcmread(first, stop_before_pixels=True).StudyInstanceUID)

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    storescp = StorescpProcess(work / "storescp")
    storescp.__enter__()
    orthanc = OrthancProcess(
        work / "orthanc",
        modalities={
            "storescp": (storescp.ae_title, "127.0.0.1", storescp.port),
            "tuipacs": ("TUI_PACS", "127.0.0.1", free_port()),
        },
        extra=dict(ORTHANC_DEFAULTS_RESTORED),
    )
    seconds: dict[str, list[Measurement]] = {}
    try:
        orthanc.__enter__()
        loaded = storescu(orthanc_target(orthanc), [parts], work / "logs")
        stats = orthanc.get("/statistics")
        assert isinstance(stats, dict)
        if stats["CountInstances"] != args.count:
            raise RetrieveError(f"Orthanc stored {stats['CountInstances']} of {args.count}")
        print(f"Orthanc loaded: {args.count} instances in {loaded:.1f} s", flush=True)
        for run in range(args.runs):
            shift = run % len(args.methods)
            for method in args.methods[shift:] + args.methods[:shift]:
                if method == "tui-pacs move":
                    m = ours("move", orthanc, study_uid, work / "node", args.count)
                elif method == "tui-pacs get":
                    m = ours("get", orthanc, study_uid, work / "node", args.count)
                elif method == "storescp move":
                    m = dcmtk_move(orthanc, storescp, study_uid, args.count)
                else:
                    m = dcmtk_get(orthanc, work / "getscu", study_uid, args.count)
                seconds.setdefault(method, []).append(m)
                results.measurements.append(
                    {
                        "run": run,
                        "method": method,
                        "seconds": m.seconds,
                        "cli_wall": m.wall,
                        "instances_per_s": args.count / m.seconds,
                    }
                )
                wall = f"  (CLI wall {m.wall:.2f} s)" if m.wall is not None else ""
                print(
                    f"run {run + 1}/{args.runs}  {method:14s} {m.seconds:6.2f} s  "
                    f"{args.count / m.seconds:7.1f} instances/s{wall}",
                    flush=True,
                )
    finally:
        orthanc.__exit__(None, None, None)
        storescp.__exit__(None, None, None)
    report(args, seconds, results)
    results.summary.append({"total_seconds": time.monotonic() - total_started})
    path = results.write()
    print(f"\nraw figures: {path}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


@dataclass
class _Target:
    name: str
    ae_title: str
    port: int


def orthanc_target(orthanc: OrthancProcess) -> _Target:
    return _Target("orthanc", orthanc.ae_title, orthanc.dicom_port)


def report(
    args: argparse.Namespace, seconds: dict[str, list[Measurement]], results: Results
) -> None:
    """Print instances/s medians and the ratios, and keep them in ``results.summary``."""
    rates = {m: [args.count / x.seconds for x in v] for m, v in seconds.items()}
    rows = []
    for method, values in rates.items():
        s = summarize(values)
        walls = [x.wall for x in seconds[method] if x.wall]
        wall = f"{args.count / summarize(walls)['median']:.1f}" if walls else "-"
        rows.append(
            [
                method,
                f"{s['median']:.1f}",
                f"{s['min']:.1f}",
                f"{s['max']:.1f}",
                wall,
                str(len(values)),
            ]
        )
        results.summary.append({"method": method, **s, "runs": len(values)})
    print(
        f"\n{args.count} CT instances {args.rows}x{args.rows} from Orthanc, instances/s "
        "(tui-pacs: the job's own time; 'CLI' counts the whole `tui-pacs retrieve` command)"
    )
    print(table(rows, ["method", "median", "min", "max", "CLI", "runs"]))
    ratio_rows = []
    for method, peer in PEER_OF.items():
        if method not in rates or peer not in rates:
            continue
        r = ratio(summarize(rates[method])["median"], summarize(rates[peer])["median"])
        pr = paired_ratio(rates[method], rates[peer])
        ratio_rows.append([f"{method} / {peer}", fmt_ratio(r), fmt_ratio(pr)])
        results.summary.append({"ratio": f"{method} / {peer}", "of_medians": r, "paired": pr})
    if ratio_rows:
        print("\nthroughput ratios (paired: median of run-by-run ratios)")
        print(table(ratio_rows, ["ours / DCMTK receiver", "of medians", "paired"]))


if __name__ == "__main__":
    sys.exit(main())
