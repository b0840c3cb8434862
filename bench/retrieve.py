"""Retrieve benchmark: a 500-instance CT study from Orthanc into tui-pacs by C-MOVE and by C-GET.

Orthanc holds one synthetic study (500 CT instances of 512 x 512 pixels, bench/synth.py). Each
run moves it these ways, in a rotating order, each into an empty receiver:

- ``tui-pacs move``: ``tui-pacs retrieve orthanc --study UID --method move`` against a running
  ``tui-pacs serve`` (the node's job asks Orthanc to C-MOVE to our AE; the instances arrive over
  the node's listener and are archived, fsynced and indexed before each C-STORE is answered);
- ``tui-pacs get``: the same with ``--method get`` (the job's C-GET SCU stores what arrives);
- ``storescp move``: DCMTK ``movescu`` asking Orthanc to C-MOVE to DCMTK ``storescp`` (which
  writes files and never fsyncs);
- ``getscu get``: DCMTK ``getscu`` retrieving it by C-GET into a folder (no fsync either);
- ``orthanc move``: Orthanc C-MOVEs it to a second Orthanc (a receiver that fsyncs and indexes,
  like ours);
- ``tui-pacs scp``: the other direction: ``movescu`` asks a tui-pacs node holding the study to
  C-MOVE it to ``storescp`` (compare with ``storescp move``, where Orthanc sends).

Our retrieve figure is the job's own duration (claimed to finished, from the job table); the
CLI's wall time, which adds Python start-up and the node noticing the queued job (it polls once a
second for jobs queued by another process), is shown beside it. Other figures are the DCMTK
tool's wall time. Every measurement checks that all instances arrived. Prints instances/s
medians and ratios of medians (and paired: the median of run-by-run ratios).

    /work/venv/bin/python bench/retrieve.py            # 5 runs
    /work/venv/bin/python bench/retrieve.py --quick    # smoke run: 100 instances, 1 run
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
    stored_instances,
    storescu,
    summarize,
    table,
    tui_pacs_command,
    wait_for_port,
    write_node_config,
)
from synth import generate  # noqa: E402

METHODS = (
    "tui-pacs move",
    "tui-pacs get",
    "storescp move",
    "getscu get",
    "orthanc move",
    "tui-pacs scp",
)
#: The comparisons printed: (ours, reference, what it says).
RATIOS = (
    ("tui-pacs move", "storescp move", "C-MOVE receiver: tui-pacs / storescp"),
    ("tui-pacs move", "orthanc move", "C-MOVE receiver: tui-pacs / Orthanc"),
    ("tui-pacs get", "getscu get", "C-GET SCU: tui-pacs / getscu"),
    ("tui-pacs scp", "storescp move", "C-MOVE sender: tui-pacs / Orthanc"),
)
SOURCE_AE = "TUI_SRC"


@dataclass
class Measurement:
    seconds: float
    #: Wall time of the command that asked for it (our CLI); None for DCMTK.
    wall: float | None = None


class RetrieveError(RuntimeError):
    """A retrieve did not bring every instance."""


class Node:
    """``tui-pacs serve`` on a fresh archive and SQLite index, with nodes in its registry.

    Args:
        nodes: ``(name, ae_title, port)`` of each registry node, on loopback.
    """

    def __init__(
        self, folder: Path, nodes: list[tuple[str, str, int]], ae_title: str = "TUI_PACS"
    ) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.folder = folder
        self.ae_title = ae_title
        self.port = free_port()
        self.config = write_node_config(folder, self.port, {"node": {"ae_title": ae_title}})
        with self.config.open("a") as f:
            for name, title, port in nodes:
                f.write(
                    f'\n[[nodes]]\nname = "{name}"\nae_title = "{title}"\n'
                    f'host = "127.0.0.1"\nport = {port}\n'
                )
        self._stderr = open(folder / "serve.stderr", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [*tui_pacs_command(), "--config", str(self.config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        wait_for_port(self.port, 60, self.proc)

    def _index(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.folder / 'index.sqlite3'}?mode=ro", uri=True)

    def stored(self) -> int:
        return stored_instances(self.folder)

    def last_job(self) -> dict[str, object]:
        con = self._index()
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


@dataclass
class _Target:
    """What ``common.storescu`` needs to send to a peer."""

    name: str
    ae_title: str
    port: int


def _put(orthanc: OrthancProcess, path: str, body: object) -> None:
    req = urllib.request.Request(orthanc.url + path, data=json.dumps(body).encode(), method="PUT")
    with urllib.request.urlopen(req, timeout=60) as rsp:
        rsp.read()


def _when(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _count(orthanc: OrthancProcess) -> int:
    stats = orthanc.get("/statistics")
    assert isinstance(stats, dict)
    return int(stats["CountInstances"])


# -- the ways to move the study ------------------------------------------------------------------


def ours(
    method: str, orthanc: OrthancProcess, study_uid: str, folder: Path, count: int
) -> Measurement:
    """``tui-pacs retrieve`` through a fresh running node; the job's duration and the CLI's."""
    node = Node(folder, [("orthanc", orthanc.ae_title, orthanc.dicom_port)])
    try:
        # Orthanc must know where TUI_PACS listens now (a C-MOVE destination).
        _put(
            orthanc,
            "/modalities/tuipacs",
            {"AET": node.ae_title, "Host": "127.0.0.1", "Port": node.port},
        )
        cmd = [*tui_pacs_command(), "--config", str(node.config), "retrieve", "orthanc"]
        cmd += ["--study", study_uid, "--method", method, "--quiet"]
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


def movescu(
    scp_title: str, scp_port: int, destination: str, study_uid: str, stored: Callable[[], int],
    count: int,
) -> Measurement:  # fmt: skip
    """``movescu`` asking ``scp_title`` to C-MOVE the study to ``destination``."""
    cmd = [str(DCMTK / "movescu"), "-S", "-aet", "MOVESCU", "-aec", scp_title]
    cmd += ["-aem", destination, "-k", "QueryRetrieveLevel=STUDY"]
    cmd += ["-k", f"StudyInstanceUID={study_uid}", "127.0.0.1", str(scp_port)]
    return _dcmtk(cmd, stored, count)


def to_storescp(
    scp_title: str, scp_port: int, storescp: StorescpProcess, study_uid: str, count: int
) -> Measurement:
    """C-MOVE from ``scp_title`` (Orthanc or our source node) into an emptied ``storescp``."""
    shutil.rmtree(storescp.folder, ignore_errors=True)
    storescp.folder.mkdir(parents=True)
    stored = lambda: len(storescp.files())  # noqa: E731
    return movescu(scp_title, scp_port, storescp.ae_title, study_uid, stored, count)


def to_orthanc(orthanc: OrthancProcess, folder: Path, study_uid: str, count: int) -> Measurement:
    """Orthanc C-MOVEs the study to a second, fresh Orthanc."""
    shutil.rmtree(folder, ignore_errors=True)
    with OrthancProcess(folder, ae_title="ORTHANC2", extra=dict(ORTHANC_DEFAULTS_RESTORED)) as dest:
        _put(
            orthanc,
            "/modalities/orthanc2",
            {"AET": dest.ae_title, "Host": "127.0.0.1", "Port": dest.dicom_port},
        )
        title, port = orthanc.ae_title, orthanc.dicom_port
        return movescu(title, port, dest.ae_title, study_uid, lambda: _count(dest), count)


def dcmtk_get(orthanc: OrthancProcess, folder: Path, study_uid: str, count: int) -> Measurement:
    """``getscu`` retrieving the study by C-GET into ``folder``."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cmd = [str(DCMTK / "getscu"), "-S", "-aet", "GETSCU", "-aec", orthanc.ae_title]
    cmd += ["-od", str(folder), "-k", "QueryRetrieveLevel=STUDY"]
    cmd += ["-k", f"StudyInstanceUID={study_uid}", "127.0.0.1", str(orthanc.dicom_port)]
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


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=500, help="instances in the study (500)")
    p.add_argument("--rows", type=int, default=512, help="image size (512 x 512)")
    p.add_argument("--runs", type=int, default=5, help="measurements per method (5)")
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
        modalities={"storescp": (storescp.ae_title, "127.0.0.1", storescp.port)},
        extra=dict(ORTHANC_DEFAULTS_RESTORED),
    )
    source: Node | None = None
    seconds: dict[str, list[Measurement]] = {}
    try:
        orthanc.__enter__()
        loaded = storescu(_Target("orthanc", orthanc.ae_title, orthanc.dicom_port), [parts],
                          work / "logs")  # fmt: skip
        if _count(orthanc) != args.count:
            raise RetrieveError(f"Orthanc stored {_count(orthanc)} of {args.count}")
        print(f"Orthanc loaded: {args.count} instances in {loaded:.1f} s", flush=True)
        if "tui-pacs scp" in args.methods:
            source = Node(work / "source", [("storescp", storescp.ae_title, storescp.port)],
                          SOURCE_AE)  # fmt: skip
            storescu(_Target("tui-pacs", SOURCE_AE, source.port), [parts], work / "logs")
            if source.stored() != args.count:
                raise RetrieveError(f"our source node stored {source.stored()} of {args.count}")
        for run in range(args.runs):
            shift = run % len(args.methods)
            for method in args.methods[shift:] + args.methods[:shift]:
                if method in ("tui-pacs move", "tui-pacs get"):
                    m = ours(method.split()[1], orthanc, study_uid, work / "node", args.count)
                elif method == "storescp move":
                    m = to_storescp(orthanc.ae_title, orthanc.dicom_port, storescp, study_uid,
                                    args.count)  # fmt: skip
                elif method == "getscu get":
                    m = dcmtk_get(orthanc, work / "getscu", study_uid, args.count)
                elif method == "orthanc move":
                    m = to_orthanc(orthanc, work / "orthanc2", study_uid, args.count)
                else:
                    assert source is not None
                    m = to_storescp(SOURCE_AE, source.port, storescp, study_uid, args.count)
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
        if source is not None:
            source.stop()
        orthanc.__exit__(None, None, None)
        storescp.__exit__(None, None, None)
    report(args, seconds, results)
    results.summary.append({"total_seconds": time.monotonic() - total_started})
    path = results.write()
    print(f"\nraw figures: {path}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def report(
    args: argparse.Namespace, seconds: dict[str, list[Measurement]], results: Results
) -> None:
    """Print instances/s medians and the ratios, and keep them in ``results.summary``."""
    rates = {m: [args.count / x.seconds for x in v] for m, v in seconds.items()}
    rows = []
    for method in METHODS:
        values = rates.get(method)
        if not values:
            continue
        s = summarize(values)
        walls = [x.wall for x in seconds[method] if x.wall]
        wall = f"{args.count / summarize(walls)['median']:.1f}" if walls else "-"
        rows.append(
            [method, f"{s['median']:.1f}", f"{s['min']:.1f}", f"{s['max']:.1f}", wall,
             str(len(values))]
        )  # fmt: skip
        results.summary.append({"method": method, **s, "runs": len(values)})
    print(
        f"\n{args.count} CT instances {args.rows}x{args.rows}, instances/s (tui-pacs move/get: "
        "the job's own time; 'CLI' counts the whole `tui-pacs retrieve` command)"
    )
    print(table(rows, ["method", "median", "min", "max", "CLI", "runs"]))
    ratio_rows = []
    for mine, theirs, label in RATIOS:
        if mine not in rates or theirs not in rates:
            continue
        r = ratio(summarize(rates[mine])["median"], summarize(rates[theirs])["median"])
        pr = paired_ratio(rates[mine], rates[theirs])
        ratio_rows.append([label, fmt_ratio(r), fmt_ratio(pr)])
        results.summary.append({"ratio": label, "of_medians": r, "paired": pr})
    if ratio_rows:
        print("\nthroughput ratios (paired: median of run-by-run ratios)")
        print(table(ratio_rows, ["comparison", "of medians", "paired"]))


if __name__ == "__main__":
    sys.exit(main())
