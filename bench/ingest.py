"""Ingest benchmark: C-STORE throughput of ``tui-pacs serve`` against DCMTK storescp and Orthanc.

Synthetic CT instances are sent with DCMTK ``storescu`` over 1 and 4 associations to each target,
started fresh for every measurement, in the same session; each measurement is checked against
what the target really stored. Prints instances/s medians and the ratios ours/Orthanc and
ours/storescp, and writes the raw figures to ``bench/results/``.

    /work/venv/bin/python bench/ingest.py            # full run: 2,000 instances, 5 runs
    /work/venv/bin/python bench/ingest.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Results,
    fmt_ratio,
    paired_ratio,
    ratio,
    start_target,
    storescu,
    summarize,
    table,
)
from synth import PARTS, generate  # noqa: E402

TARGETS = ("tui-pacs", "orthanc", "storescp")


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=2000, help="instances per measurement (2000)")
    p.add_argument("--runs", type=int, default=5, help="measurements per case (5)")
    p.add_argument("--sizes", type=_ints, default=[512, 64], help="image sizes, e.g. 512,64")
    p.add_argument("--associations", type=_ints, default=[1, 4], help="e.g. 1,4")
    p.add_argument(
        "--targets", default=",".join(TARGETS), help=f"comma-separated subset of {','.join(TARGETS)}"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 200 instances, 1 run")
    p.add_argument(
        "--node-set",
        action="append",
        default=[],
        metavar="SECTION.KEY=TOML",
        help="extra key for our node's config, e.g. node.max_pdu_size=0 (repeatable)",
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
    args.node_settings = {}
    for item in args.node_set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        if not name or not value:
            p.error(f"--node-set {item!r}: expected SECTION.KEY=VALUE")
        parsed = tomllib.loads(f"v = {value}")["v"]
        args.node_settings.setdefault(section, {})[name] = parsed
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work: Path = args.work_dir
    results = Results(
        "ingest",
        {k: v for k, v in vars(args).items() if k != "work_dir"} | {"work_dir": str(work)},
    )
    data = {rows: generate(work / "data" / f"ct{rows}-{args.count}", rows, args.count) for rows in args.sizes}
    cases = list(itertools.product(args.sizes, args.associations))
    rates: dict[tuple[str, int, int], list[float]] = {}
    total_started = time.monotonic()
    for run in range(args.runs):
        for rows, assoc in cases:
            # Rotate the order each run so drift in machine load does not favour one target.
            order = args.targets[run % len(args.targets):] + args.targets[: run % len(args.targets)]
            for name in order:
                folder = work / "run" / name
                target = start_target(name, folder, args.node_settings)
                try:
                    # One storescu per association, each with its share of the part folders.
                    groups = [data[rows][i::assoc] for i in range(assoc)]
                    seconds = storescu(target, groups, folder / "logs")
                    stored = target.stored()
                finally:
                    target.stop()
                if stored != args.count:
                    print(
                        f"FAILED: {name} stored {stored} of {args.count} instances "
                        f"({rows}x{rows}, {assoc} association(s)); see {folder}",
                        file=sys.stderr,
                    )
                    results.measurements.append(
                        {"target": name, "rows": rows, "associations": assoc, "run": run,
                         "error": f"stored {stored} of {args.count}"}  # fmt: skip
                    )
                    results.write()
                    return 1
                rate = args.count / seconds
                rates.setdefault((name, rows, assoc), []).append(rate)
                results.measurements.append(
                    {"target": name, "rows": rows, "associations": assoc, "run": run,
                     "seconds": seconds, "instances_per_s": rate}  # fmt: skip
                )
                print(
                    f"run {run + 1}/{args.runs}  {name:9s} {rows:3d}x{rows:<3d} {assoc} assoc  "
                    f"{rate:8.1f} instances/s",
                    flush=True,
                )
                shutil.rmtree(folder, ignore_errors=True)
    report(args, rates, results)
    results.summary.append({"total_seconds": time.monotonic() - total_started})
    path = results.write()
    print(f"\nraw figures: {path}")
    return 0


def report(
    args: argparse.Namespace, rates: dict[tuple[str, int, int], list[float]], results: Results
) -> None:
    """Print the medians table and the ratios, and keep them in ``results.summary``."""
    rows_out = []
    for name in args.targets:
        for rows, assoc in itertools.product(args.sizes, args.associations):
            values = rates.get((name, rows, assoc))
            if not values:
                continue
            s = summarize(values)
            rows_out.append(
                [name, f"{rows}x{rows}", str(assoc), f"{s['median']:.0f}", f"{s['min']:.0f}",
                 f"{s['max']:.0f}", str(len(values))]  # fmt: skip
            )
            results.summary.append(
                {"target": name, "rows": rows, "associations": assoc, **s, "runs": len(values)}
            )
    print(f"\n{args.count} instances per run, instances/s")
    print(table(rows_out, ["target", "size", "assoc", "median", "min", "max", "runs"]))
    if "tui-pacs" not in args.targets:
        return
    ratio_rows = []
    for rows, assoc in itertools.product(args.sizes, args.associations):
        ours = rates.get(("tui-pacs", rows, assoc), [])
        med = summarize(ours)["median"] if ours else None
        cells = [f"{rows}x{rows}", str(assoc)]
        entry: dict[str, object] = {"rows": rows, "associations": assoc}
        for peer in ("orthanc", "storescp"):
            theirs = rates.get((peer, rows, assoc), [])
            r = ratio(med, summarize(theirs)["median"] if theirs else None)
            pr = paired_ratio(ours, theirs) if theirs else None
            cells += [fmt_ratio(r), fmt_ratio(pr)]
            entry[f"ours_over_{peer}"] = r
            entry[f"ours_over_{peer}_paired"] = pr
        ratio_rows.append(cells)
        results.summary.append(entry)
    print("\nratios of medians (paired: median of run-by-run ratios)")
    print(
        table(
            ratio_rows,
            ["size", "assoc", "ours/Orthanc", "paired", "ours/storescp", "paired"],
        )
    )


if __name__ == "__main__":
    sys.exit(main())
