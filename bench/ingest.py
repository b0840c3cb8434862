"""Ingest benchmark: C-STORE throughput of ``tui-pacs serve`` against DCMTK storescp and Orthanc.

Synthetic CT instances are sent with DCMTK ``storescu`` over 1 and 4 associations to each target,
started fresh for every measurement, in the same session; each measurement is checked against
what the target really stored. Prints instances/s medians, CPU time per instance and the ratios
ours/Orthanc and ours/storescp, and writes the raw figures to ``bench/results/``.

    /work/venv/bin/python bench/ingest.py            # full run: 2,000 instances, 5 runs
    /work/venv/bin/python bench/ingest.py --quick    # smoke run

See bench/README.md for the options that compare variants of our node in one session, e.g.
``--variant pynetdicom-only:node.fast_storage=false`` (every association served by pynetdicom,
without the store acceptor) or ``--baseline before=DIR`` (an older tree, ``git archive``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    TARGETS,
    Results,
    cpu_seconds,
    fmt_ratio,
    paired_ratio,
    ratio,
    start_target,
    storescu,
    summarize,
    table,
)
from synth import PARTS, generate  # noqa: E402

#: Measured unless --targets says otherwise; "pynetdicom" (bench/bare_scp.py) is opt-in.
DEFAULT_TARGETS = ("tui-pacs", "orthanc", "storescp")
OURS = "tui-pacs"
Settings = dict[str, dict[str, object]]
Key = tuple[str, int, int]  # target, rows, associations


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _settings(items: list[str], error: object) -> Settings:
    """``SECTION.KEY=TOML`` strings to ``{section: {key: value}}``."""
    settings: Settings = {}
    for item in items:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        if not name or not value:
            error(f"{item!r}: expected SECTION.KEY=VALUE, e.g. node.listener_processes=2")  # type: ignore[operator]
        settings.setdefault(section, {})[name] = tomllib.loads(f"v = {value}")["v"]
    return settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=2000, help="instances per measurement (2000)")
    p.add_argument("--runs", type=int, default=5, help="measurements per case (5)")
    p.add_argument("--sizes", type=_ints, default=[512, 64], help="image sizes (512,64)")
    p.add_argument("--associations", type=_ints, default=[1, 4], help="associations (1,4)")
    p.add_argument(
        "--targets",
        default=",".join(DEFAULT_TARGETS),
        help=f"comma-separated, from {','.join(TARGETS)} (default: {','.join(DEFAULT_TARGETS)})",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 200 instances, 1 run")
    p.add_argument(
        "--node-set",
        action="append",
        default=[],
        metavar="SECTION.KEY=TOML",
        help="extra key for our node's config, e.g. node.listener_processes=2 (repeatable)",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL:SECTION.KEY=TOML[,...][,source=DIR]",
        help="also measure our node with these keys (and the tui_pacs package in DIR, see "
        "--baseline), as target tui-pacs[LABEL] (repeatable)",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="[LABEL=]DIR",
        help="also measure the tui_pacs package in DIR (e.g. `git archive COMMIT | tar -x -C "
        "DIR`) as target tui-pacs[LABEL] (default label: base; repeatable)",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tui-pacs-bench",
        help="where data sets are cached and targets store (default: $TMPDIR/tui-pacs-bench)",
    )
    p.add_argument("--label", default="", help="free text saved with the results")
    args = p.parse_args(argv)
    if args.quick:
        args.count, args.runs = 200, 1
    args.targets = [t for t in args.targets.split(",") if t]
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        p.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    if args.count < PARTS:
        p.error(f"--count must be at least {PARTS}")
    if any(a not in (1, 2, PARTS) for a in args.associations):
        p.error(f"--associations: each must be 1, 2 or {PARTS} (the data set has {PARTS} parts)")
    base = _settings(args.node_set, p.error)
    # Every variant of our node: target name -> (config keys, source tree).
    args.ours = {}
    if OURS in args.targets:
        args.ours[OURS] = (base, None)
    for spec in args.variant:
        label, _, keys = spec.partition(":")
        merged = {s: dict(v) for s, v in base.items()}
        items = [k for k in keys.split(",") if k and not k.startswith("source=")]
        sources = [k.removeprefix("source=") for k in keys.split(",") if k.startswith("source=")]
        for section, values in _settings(items, p.error).items():
            merged.setdefault(section, {}).update(values)
        args.ours[f"{OURS}[{label}]"] = (merged, Path(sources[-1]).resolve() if sources else None)
    for spec in args.baseline:
        label, _, folder = spec.rpartition("=")
        tree = Path(folder).resolve()
        if not (tree / "tui_pacs" / "__init__.py").exists():
            p.error(f"--baseline {spec}: no tui_pacs package in {tree}")
        args.ours[f"{OURS}[{label or 'base'}]"] = (base, tree)
    args.all_targets = [*args.targets, *(n for n in args.ours if n != OURS)]
    return args


def measure(
    args: argparse.Namespace, name: str, rows: int, assoc: int, run: int, parts: list[Path]
) -> tuple[float, float, int]:
    """Start ``name`` fresh, send, and return (seconds, CPU seconds of the target, stored)."""
    folder = args.work_dir / "run" / name.replace("[", "-").replace("]", "")
    settings, tree = args.ours.get(name, (None, None))
    target = start_target(name, folder, settings, tree)
    try:
        # One storescu per association, each with its share of the part folders.
        groups = [parts[i::assoc] for i in range(assoc)]
        cpu_before = cpu_seconds(target.pid)
        seconds = storescu(target, groups, folder / "logs")
        cpu = cpu_seconds(target.pid) - cpu_before
        stored = target.stored()
    finally:
        target.stop()
    if stored == args.count:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(
            f"FAILED: {name} stored {stored} of {args.count} instances "
            f"({rows}x{rows}, {assoc} association(s)); see {folder}",
            file=sys.stderr,
        )
    return seconds, cpu, stored


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work: Path = args.work_dir
    options = {k: v for k, v in vars(args).items() if k not in ("work_dir", "ours")}
    options["work_dir"] = str(work)
    options["ours"] = {k: [v[0], str(v[1] or "")] for k, v in args.ours.items()}
    results = Results("ingest", options)
    data = {
        rows: generate(work / "data" / f"ct{rows}-{args.count}", rows, args.count)
        for rows in args.sizes
    }
    rates: dict[Key, list[float]] = {}
    cpus: dict[Key, list[float]] = {}
    started = time.monotonic()
    targets = args.all_targets
    for run in range(args.runs):
        for rows, assoc in itertools.product(args.sizes, args.associations):
            # Rotate the order each run so drift in machine load does not favour one target.
            shift = run % len(targets)
            for name in targets[shift:] + targets[:shift]:
                seconds, cpu, stored = measure(args, name, rows, assoc, run, data[rows])
                entry: dict[str, object] = {
                    "target": name, "rows": rows, "associations": assoc, "run": run,
                    "seconds": seconds, "stored": stored, "loadavg": os.getloadavg()[0],
                }  # fmt: skip
                results.measurements.append(entry)
                if stored != args.count:
                    results.write()
                    return 1
                rate, cpu_ms = args.count / seconds, 1000 * cpu / args.count
                entry |= {"instances_per_s": rate, "cpu_ms_per_instance": cpu_ms}
                rates.setdefault((name, rows, assoc), []).append(rate)
                cpus.setdefault((name, rows, assoc), []).append(cpu_ms)
                print(
                    f"run {run + 1}/{args.runs}  {name:14s} {rows:3d}x{rows:<3d} {assoc} assoc "
                    f"{rate:7.1f} instances/s {cpu_ms:6.2f} CPU ms/instance "
                    f"(load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    report(args, rates, cpus, results)
    results.summary.append({"total_seconds": time.monotonic() - started})
    path = results.write()
    print(f"\nraw figures: {path}")
    return 0


def report(
    args: argparse.Namespace,
    rates: dict[Key, list[float]],
    cpus: dict[Key, list[float]],
    results: Results,
) -> None:
    """Print the medians table and the ratios, and keep them in ``results.summary``."""
    cases = list(itertools.product(args.sizes, args.associations))
    lines = []
    for name in args.all_targets:
        for rows, assoc in cases:
            values = rates.get((name, rows, assoc))
            if not values:
                continue
            s = summarize(values)
            cpu = statistics.median(cpus[(name, rows, assoc)])
            lines.append(
                [
                    name,
                    f"{rows}x{rows}",
                    str(assoc),
                    f"{s['median']:.0f}",
                    f"{s['min']:.0f}",
                    f"{s['max']:.0f}",
                    str(len(values)),
                    f"{cpu:.2f}",
                ]  # fmt: skip
            )
            results.summary.append(
                {
                    "target": name,
                    "rows": rows,
                    "associations": assoc,
                    **s,
                    "runs": len(values),
                    "cpu_ms_per_instance": cpu,
                }  # fmt: skip
            )
    print(f"\n{args.count} instances per run: instances/s, and the target's CPU time per instance")
    print(table(lines, ["target", "size", "assoc", "median", "min", "max", "runs", "CPU ms"]))
    peers = [p for p in ("orthanc", "storescp") if p in args.targets]
    if OURS in args.ours and len(args.ours) > 1:
        peers.append(OURS)  # variants against the default node
    if not args.ours or not peers:
        return
    lines = []
    for name in args.ours:
        for rows, assoc in cases:
            ours = rates.get((name, rows, assoc), [])
            cells = [name, f"{rows}x{rows}", str(assoc)]
            entry: dict[str, object] = {"target": name, "rows": rows, "associations": assoc}
            for peer in peers:
                theirs = rates.get((peer, rows, assoc), [])
                if peer == name or not ours or not theirs:
                    cells += ["-", "-"]
                    continue
                r = ratio(summarize(ours)["median"], summarize(theirs)["median"])
                pr = paired_ratio(ours, theirs)
                cells += [fmt_ratio(r), fmt_ratio(pr)]
                entry[f"over_{peer}"] = r
                entry[f"over_{peer}_paired"] = pr
            lines.append(cells)
            results.summary.append(entry)
    print("\nratios of medians (paired: median of run-by-run ratios)")
    header = ["ours", "size", "assoc"]
    for peer in peers:
        header += [f"/{peer}", "paired"]
    print(table(lines, header))


if __name__ == "__main__":
    sys.exit(main())
