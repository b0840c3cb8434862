"""The image widget in a real terminal: xterm as a VT340 under Xvfb, screenshot vs pixels."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.peers import require

pytestmark = [pytest.mark.interop, pytest.mark.slow]

XTERM, XVFB, IMPORT = Path("/usr/bin/xterm"), Path("/usr/bin/Xvfb"), Path("/usr/bin/import")
ROOT = Path(__file__).resolve().parents[2]


def pattern() -> np.ndarray:
    """120x84 grey test pattern: a ramp over every level, a black and a white block, a gradient."""
    y, x = np.mgrid[0:84, 0:120]
    img = (x * 255 // 119).astype(np.uint8)
    img[30:54, 10:40] = 0
    img[30:54, 80:110] = 255
    img[60:84] = (y[60:84] * 255 // 83).astype(np.uint8)
    return img


def free_display() -> int:
    """A display number with no X server lock file."""
    for n in range(90, 140):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise RuntimeError("no free X display number")


def wait_for(condition, timeout: float, what: str, step: float = 0.1):
    """Poll ``condition`` until it returns a true value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def test_preview_in_xterm_vt340(tmp_path: Path) -> None:
    """In xterm -ti vt340 the probe picks sixel and the screen shows the image within 2 levels."""
    for path, what in ((XTERM, "xterm"), (XVFB, "Xvfb"), (IMPORT, "ImageMagick import")):
        require(path, what)
    expected = pattern()
    png = tmp_path / "pattern.png"
    Image.fromarray(expected).save(png)
    report = tmp_path / "report.txt"
    display = free_display()
    env = {**os.environ, "DISPLAY": f":{display}"}
    env.pop("TUI_PACS_GRAPHICS", None)
    xvfb = subprocess.Popen(
        [str(XVFB), f":{display}", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    xterm = None
    try:
        wait_for(lambda: Path(f"/tmp/.X11-unix/X{display}").exists(), 10, "Xvfb")
        command = f"cd {ROOT} && exec {sys.executable} -m tests.ui.xterm_show {png} {report}"
        xterm = subprocess.Popen(
            [
                str(XTERM), "-ti", "vt340", "-b", "0", "-bw", "0", "-geometry", "60x20+0+0",
                "-bg", "black", "-fg", "white", "-fn", "fixed",
                "-xrm", "XTerm*numColorRegisters: 256",
                "-xrm", "XTerm*decTerminalID: vt340",
                "-e", "/bin/sh", "-c", command,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        mode = wait_for(lambda: report.exists() and report.read_text(), 60, "the pattern on screen")
        assert mode.startswith("sixel"), mode
        shot = tmp_path / "shot.png"

        def matches() -> bool | None:
            subprocess.run(
                [str(IMPORT), "-display", f":{display}", "-window", "root", str(shot)],
                env=env, check=True, timeout=20,
            )  # fmt: skip
            screen = np.asarray(Image.open(shot).convert("RGB")).astype(int)
            h, w = expected.shape
            area = screen[:h, :w]
            diff = np.abs(area - expected[..., None].astype(int)).max()
            return None if diff > 2 else True

        wait_for(matches, 20, "the screenshot to show the pattern", step=0.5)
    finally:
        for proc in (xterm, xvfb):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
