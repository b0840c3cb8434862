"""Render benchmark: time to first preview, series scrolling with prefetch, cine frame rate.

Every figure goes through the same path the console takes (``tui_pacs.services.render``):
read + decode (pydicom and its pylibjpeg plugins), Modality/VOI/Presentation LUTs to 8 bits,
fit into the preview box, then encode for the terminal: sixel (the console's numpy encoder,
tui_pacs.ui.sixel, what its image widget sends; "sixel-ti" is textual-image's pure-Python encoder
for reference) and kitty (PNG at compress level 2, base64, 4 KiB chunks: what textual-image's
TGP widget sends). Test images are made in a temporary folder: a 512x512 CT (pixels of pydicom's
693_J2KI, stored uncompressed), a 1024x1024 12-bit MR phantom compressed with reversible
JPEG 2000 (pylibjpeg-openjpeg), a 48-slice CT series, and pydicom's 30-frame JPEG ultrasound.
The peer is DCMTK's dcm2pnm writing PNG (a process per image, decode + window + encode).
Bytes are reported per image (first preview) and per cine frame; the colour ultrasound frame's
error after each sixel encoder (decoded back, against the rendered RGB) is reported too.

    /work/venv/bin/python bench/render.py            # 15 runs per case
    /work/venv/bin/python bench/render.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from pydicom import dcmread  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.uid import JPEG2000Lossless, generate_uid  # noqa: E402

# The renderable package probes the terminal on import; the encoder module does not.
from textual_image._sixel import image_to_sixels  # noqa: E402

from bench.common import Results, fmt_ratio, ratio, summarize, table  # noqa: E402
from tui_pacs.services.render import Renderer  # noqa: E402
from tui_pacs.ui.sixel import encode as sixel_numpy  # noqa: E402

DCM2PNM = Path("/usr/bin/dcm2pnm")
PREVIEW_BOX = (512, 512)
CINE_BOX = (400, 400)
GOALS = {"first_preview_ct_ms": 80.0, "scroll_images_per_s": 15.0, "cine_fps": 15.0}


# -- encoders ------------------------------------------------------------------------------------


def sixel(image: Image.Image) -> bytes:
    """The sixel stream the console's image widget writes (numpy encoder)."""
    return sixel_numpy(image).encode("ascii")


def sixel_ti(image: Image.Image) -> bytes:
    """The sixel stream textual-image's own sixel renderable would write for this image."""
    return image_to_sixels(image).encode("ascii")


def kitty(image: Image.Image) -> bytes:
    """Kitty graphics protocol: PNG (compress level 2), base64, in 4096-byte chunks."""
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=2)
    data = base64.standard_b64encode(buf.getvalue())
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        more = 1 if i < len(chunks) - 1 else 0
        head = b"a=T,f=100,q=2," if i == 0 else b""
        out.append(b"\x1b_G" + head + b"m=%d;" % more + chunk + b"\x1b\\")
    return b"".join(out)


ENCODERS: dict[str, Callable[[Image.Image], bytes]] = {
    "sixel": sixel,
    "sixel-ti": sixel_ti,
    "kitty": kitty,
}


# -- test images ---------------------------------------------------------------------------------


def make_ct(folder: Path) -> Path:
    """A 512x512 CT: pydicom's 693_J2KI pixels, decompressed to Explicit VR Little Endian."""
    ds = dcmread(get_testdata_file("693_J2KI.dcm"))
    ds.decompress()
    path = folder / "ct512.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def make_ct_series(folder: Path, ct: Path, count: int) -> list[Path]:
    """``count`` slices: the CT shifted a little per slice, each its own instance."""
    ds = dcmread(ct)
    base = ds.pixel_array
    series_uid = generate_uid()
    paths = []
    for k in range(count):
        ds.PixelData = np.roll(base, k * 3, axis=0).astype(base.dtype).tobytes()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = series_uid
        ds.InstanceNumber = k + 1
        path = folder / f"slice{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def make_mr_j2k(folder: Path) -> Path:
    """A 1024x1024 12-bit MR phantom (ellipses + noise), reversible JPEG 2000."""
    n = 1024
    yy, xx = np.mgrid[0:n, 0:n] / n - 0.5
    img = np.zeros((n, n))
    for cx, cy, a, b, level in [
        (0, 0, 0.42, 0.46, 900),
        (0, 0, 0.38, 0.42, 600),
        (-0.12, 0.05, 0.08, 0.16, 1800),
        (0.12, 0.05, 0.08, 0.16, 1700),
        (0, -0.2, 0.1, 0.05, 2600),
        (0.05, 0.25, 0.04, 0.04, 3200),
    ]:
        inside = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1
        img[inside] = level
    rng = np.random.default_rng(5)
    img = np.clip(img + rng.normal(0, 25, img.shape), 0, 4095).astype(np.uint16)
    ds = dcmread(get_testdata_file("MR_small.dcm"))
    ds.Rows = ds.Columns = n
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 1600, 3200
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PixelData = img.tobytes()
    ds.compress(JPEG2000Lossless, img)
    path = folder / "mr1024_j2k.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


# -- measurements --------------------------------------------------------------------------------


def first_preview(path: Path, frame: int, box: tuple[int, int], encoder: str) -> dict[str, float]:
    """One cold preview (fresh renderer, file in the OS cache), split into its stages (ms)."""
    renderer = Renderer()
    t0 = time.perf_counter()
    renderer.decoded(path, frame)
    t1 = time.perf_counter()
    result = renderer.render(path, frame, size=box)
    t2 = time.perf_counter()
    payload = ENCODERS[encoder](result.image)
    t3 = time.perf_counter()
    return {
        "read_decode_ms": (t1 - t0) * 1000,
        "window_scale_ms": (t2 - t1) * 1000,
        "encode_ms": (t3 - t2) * 1000,
        "total_ms": (t3 - t0) * 1000,
        "bytes": float(len(payload)),
    }


def dcm2pnm(path: Path, frame: int, width: int) -> float | None:
    """DCMTK writing the same preview as PNG (first file window, else min-max), in ms."""
    if not DCM2PNM.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(DCM2PNM), "--write-png", "+F", str(frame + 1), "+Sxv", str(width)]
        cmd += ["+Wi", "1"] if "WindowCenter" in dcmread(path, stop_before_pixels=True) else ["+Wm"]
        t0 = time.perf_counter()
        proc = subprocess.run([*cmd, str(path), f"{tmp}/out.png"], capture_output=True, timeout=60)
        elapsed = (time.perf_counter() - t0) * 1000
    return elapsed if proc.returncode == 0 else None


def scroll(paths: list[Path], encoder: str, prefetch: bool, ahead: int = 6) -> float:
    """Images per second scrolling through a series, each rendered and encoded for the pane.

    With ``prefetch``, a worker thread decodes the next ``ahead`` images while the current one
    is windowed, scaled and encoded, as the console's prefetch worker does.
    """
    renderer = Renderer()
    moved = threading.Condition()
    state = {"position": 0, "stop": False}

    def prefetcher() -> None:
        done = 0
        while True:
            with moved:
                moved.wait_for(lambda d=done: state["stop"] or state["position"] + ahead > d)
                if state["stop"]:
                    return
                start = max(done, state["position"]) + 1
                end = min(state["position"] + ahead, len(paths) - 1)
            if start <= end:
                renderer.prefetch(
                    [(paths[k], 0) for k in range(start, end + 1)], lambda: bool(state["stop"])
                )
            done = max(done, end)
            if done >= len(paths) - 1:
                return

    worker = threading.Thread(target=prefetcher, daemon=True) if prefetch else None
    if worker:
        worker.start()
    t0 = time.perf_counter()
    for k, path in enumerate(paths):
        with moved:
            state["position"] = k
            moved.notify()
        ENCODERS[encoder](renderer.render(path, 0, size=PREVIEW_BOX).image)
    elapsed = time.perf_counter() - t0
    with moved:
        state["stop"] = True
        moved.notify()
    if worker:
        worker.join(timeout=10)
    return len(paths) / elapsed


def cine(path: Path, encoder: str, loops: int = 2) -> tuple[float, float, float]:
    """Frames/s of a multi-frame loop at 400x400 (first loop decoding, then warm), bytes/frame."""
    renderer = Renderer()
    frames = renderer.frame_count(path)
    rates = []
    sent = 0
    for _ in range(loops):
        sent = 0
        t0 = time.perf_counter()
        for k in range(frames):
            image = renderer.render(path, k, size=CINE_BOX).image
            # While playing, the console encodes colour with the coarser cine grid (fast).
            if encoder == "sixel":
                sent += len(sixel_numpy(image, fast=True))
            else:
                sent += len(ENCODERS[encoder](image))
        rates.append(frames / (time.perf_counter() - t0))
    return rates[0], rates[-1], sent / frames


def colour_error(path: Path, frame: int) -> list[dict[str, float | str]]:
    """Bytes and per-channel error of each sixel encoding of a colour frame, decoded back.

    The frame is rendered into the preview box; the error is the absolute difference per
    channel between the decoded sixel (percentages rounded to 8 bits) and the rendered RGB.
    """
    from tests.ui.test_sixel import decode_sixel

    image = Renderer().render(path, frame, size=PREVIEW_BOX).image
    source = np.asarray(image.convert("RGB")).astype(int)
    streams = {
        "sixel": sixel_numpy(image),
        "sixel (cine)": sixel_numpy(image, fast=True),
        "sixel-ti": image_to_sixels(image),
    }
    rows: list[dict[str, float | str]] = []
    for name, stream in streams.items():
        error = np.abs(decode_sixel(stream) - source)
        rows.append(
            {
                "encoder": name,
                "size": f"{image.width}x{image.height}",
                "kib": len(stream) / 1024,
                "mean": float(error.mean()),
                "p99": float(np.percentile(error, 99)),
                "max": int(error.max()),
            }
        )
    return rows


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15, help="measurements per case (15)")
    p.add_argument("--slices", type=int, default=48, help="CT series length for scrolling (48)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 runs, 12 slices")
    p.add_argument("--label", default="", help="free text saved with the results")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.runs, args.slices = 3, 12
    warnings.simplefilter("ignore")
    results = Results("render", {"runs": args.runs, "slices": args.slices, "label": args.label})
    with tempfile.TemporaryDirectory(prefix="tui-pacs-bench-") as tmp:
        folder = Path(tmp)
        ct = make_ct(folder)
        cases = [
            ("CT 512x512 (uncompressed)", ct, 0),
            ("CT 512x512 (JPEG 2000 lossy)", Path(get_testdata_file("693_J2KI.dcm")), 0),
            ("MR 1024x1024 (JPEG 2000)", make_mr_j2k(folder), 0),
            (
                "US 320x240, frame 16 of 30 (JPEG)",
                Path(get_testdata_file("examples_ybr_color.dcm")),
                15,
            ),
        ]
        series = make_ct_series(folder, ct, args.slices)

        rows = []
        for name, path, frame in cases:
            for encoder in ENCODERS:
                first_preview(path, frame, PREVIEW_BOX, encoder)  # warm the OS cache and imports
                runs = [first_preview(path, frame, PREVIEW_BOX, encoder) for _ in range(args.runs)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                peer = None
                if encoder == "kitty":
                    width = Renderer().render(path, frame, size=PREVIEW_BOX).image.width
                    peers = [dcm2pnm(path, frame, width) for _ in range(max(3, args.runs // 3))]
                    good = [p for p in peers if p is not None]
                    peer = statistics.median(good) if good else None
                totals = [r["total_ms"] for r in runs]
                results.measurements.append(
                    {"case": name, "encoder": encoder, "runs": runs, "dcm2pnm_ms": peer}
                )
                results.summary.append(
                    {
                        "case": name,
                        "encoder": encoder,
                        **summarize(totals),
                        "stages": med,
                        "dcm2pnm_ms": peer,
                    }
                )
                rows.append(
                    [
                        name,
                        encoder,
                        f"{med['total_ms']:.1f}",
                        f"{med['read_decode_ms']:.1f}",
                        f"{med['window_scale_ms']:.1f}",
                        f"{med['encode_ms']:.1f}",
                        f"{med['bytes'] / 1024:.0f}",
                        f"{peer:.0f}" if peer else "-",
                        fmt_ratio(ratio(med["total_ms"], peer)),
                    ]
                )
        print("\nTime to first preview into a 512x512 pane (medians, ms)")
        print(
            table(
                rows,
                [
                    "image",
                    "enc",
                    "total",
                    "decode",
                    "window+scale",
                    "encode",
                    "KiB",
                    "dcm2pnm",
                    "ours/dcm2pnm",
                ],
            )
        )

        rows = []
        for encoder in ENCODERS:
            for prefetch in (True, False):
                rates = [scroll(series, encoder, prefetch) for _ in range(max(3, args.runs // 3))]
                med = statistics.median(rates)
                results.summary.append(
                    {
                        "case": "scroll CT series",
                        "encoder": encoder,
                        "prefetch": prefetch,
                        **summarize(rates),
                    }
                )
                rows.append(
                    [f"{len(series)} CT slices", encoder, "yes" if prefetch else "no", f"{med:.1f}"]
                )
        print(f"\nSeries scrolling, each image rendered into {PREVIEW_BOX} and encoded (images/s)")
        print(table(rows, ["series", "enc", "prefetch", "images/s"]))

        rows = []
        us = cases[3][1]
        for encoder in ENCODERS:
            triples = [cine(us, encoder) for _ in range(max(3, args.runs // 3))]
            cold = statistics.median(p[0] for p in triples)
            warm = statistics.median(p[1] for p in triples)
            per_frame = triples[0][2]
            results.summary.append(
                {
                    "case": "cine US 30 frames at 400x400",
                    "encoder": encoder,
                    "first_loop_fps": cold,
                    "warm_loop_fps": warm,
                    "bytes_per_frame": per_frame,
                }
            )
            rows.append(
                [
                    "US 30 frames -> 400x300",
                    encoder,
                    f"{cold:.1f}",
                    f"{warm:.1f}",
                    f"{per_frame / 1024:.1f}",
                ]
            )
        print("\nCine at 400x400 (frames/s; first loop decodes, later loops hit the cache)")
        print(table(rows, ["loop", "enc", "first loop", "warm loop", "KiB/frame"]))

        name, path, frame = cases[3]
        rows = []
        for row in colour_error(path, frame):
            results.summary.append({"case": f"colour error, {name}", **row})
            rows.append(
                [
                    str(row["encoder"]),
                    str(row["size"]),
                    f"{row['kib']:.1f}",
                    f"{row['mean']:.2f}",
                    f"{row['p99']:.0f}",
                    f"{row['max']}",
                ]
            )
        print(f"\nColour error of {name}, decoded sixel vs rendered RGB (levels per channel)")
        print(table(rows, ["enc", "size", "KiB", "mean", "p99", "max"]))

    ct_first = next(
        s
        for s in results.summary
        if s["case"].startswith("CT 512x512 (unc") and s["encoder"] == "sixel"
    )
    print(
        f"\nGoals: first CT preview < {GOALS['first_preview_ct_ms']:.0f} ms "
        f"(sixel median {ct_first['median']:.1f} ms); scrolling >= 15 images/s; cine >= 15 fps."
    )
    path = results.write()
    print(f"raw figures: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
