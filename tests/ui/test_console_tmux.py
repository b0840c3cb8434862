"""End to end: the real `tui-pacs` console in tmux receives a study from DCMTK storescu."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.peers import IN_CI, free_port, run_dcmtk, wait_for_port, write_node_config
from tests.ui.conftest import TODAY
from tui_pacs.services.demo import demo_datasets

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


class Tmux:
    """A private tmux server (own socket) running one command in an 80x24 window."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30
        )
        return proc.stdout

    def start(self, command: str) -> None:
        self.run("new-session", "-d", "-s", "console", "-x", "80", "-y", "24", command)
        self.run("set-option", "-t", "console", "remain-on-exit", "on")

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "console")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "console", *keys)

    def dead(self) -> bool:
        return self.run("display-message", "-p", "-t", "console", "#{pane_dead}").strip() == "1"

    def wait_for(self, what: Callable[[str], bool], label: str, timeout: float = 30.0) -> str:
        """Poll the pane until ``what(screen)`` holds; fail with the screen otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if what(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {label}; the screen:\n{text}")
            time.sleep(0.2)  # polling a terminal: there is nothing to wait on

    def kill(self) -> None:
        self.run("kill-server")


def in_text_field(screen: str) -> bool:
    """The footer lists no single-letter keys: a text field has the focus."""
    return "Clear filter" not in screen and "Filter" in screen


def _write_study(folder: Path) -> list[Path]:
    """One CT study (13 images) of a patient no one else has."""
    folder.mkdir(parents=True)
    paths: list[Path] = []
    first = ""
    for ds in demo_datasets(TODAY, seed=42):
        if paths and ds.StudyInstanceUID != first:
            break
        first = ds.StudyInstanceUID
        ds.PatientName = "ZEBRA^Tmux"
        ds.PatientID = "TMUX0001"
        path = folder / f"{len(paths):03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_console_shows_a_study_sent_by_storescu(tmp_path: Path) -> None:
    """tui-pacs in tmux hosts a node; storescu sends a study; it shows, filters, opens its tags."""
    if shutil.which("tmux") is None:
        if IN_CI:
            pytest.fail("tmux is missing")
        pytest.skip("tmux not installed")
    port = free_port()
    config = write_node_config(tmp_path / "store", port, ae_title="TMUX_PACS")
    files = _write_study(tmp_path / "send")
    tmux = Tmux(f"tui-pacs-test-{port}")
    command = (
        f"cd {ROOT} && TERM=xterm-256color TUI_PACS_CONFIG={config} "
        f"{sys.executable} -m tui_pacs"
    )
    tmux.start(command)
    try:
        tmux.wait_for(lambda s: "Studies 0 of 0" in s, "the empty study list")
        tmux.wait_for(lambda s: f"TMUX_PACS :{port}" in s, "the node in the status bar")
        wait_for_port(port)
        sent = run_dcmtk("storescu", "-aet", "MODALITY", "-aec", "TMUX_PACS", "127.0.0.1",
                         str(port), *map(str, files))  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        screen = tmux.wait_for(lambda s: "ZEBRA, Tmux" in s, "the new study in the list")
        assert "Studies 1–1 of 1" in screen
        tmux.keys("-l", "/zebra")  # in one burst, as a paste or a slow SSH link delivers it
        tmux.keys("Enter")
        tmux.wait_for(lambda s: "filtered" in s and "ZEBRA, Tmux" in s, "the filtered list")
        tmux.keys("t")
        tmux.wait_for(lambda s: "Instance 1/" in s and "(0002,0000)" in s, "the tag tree")
        tmux.keys("f")
        # Keys typed before the focus has moved go to the tree (Textual routes each key to the
        # widget focused when it arrives): wait for the footer of a text field first.
        tmux.wait_for(in_text_field, "the tag search focused")
        tmux.keys("-l", "patientname")
        screen = tmux.wait_for(lambda s: "ZEBRA^Tmux" in s, "the tag search")
        assert "(0010,0010) PatientName PN" in screen
        tmux.keys("Escape")  # back to the lists (a key right after Escape would read as Alt+key)
        tmux.wait_for(lambda s: "Studies 1–1 of 1" in s, "the lists again")
        tmux.keys("q")
        tmux.wait_for(lambda s: "Quit tui-pacs?" in s, "the quit confirmation")
        tmux.keys("y")
        deadline = time.monotonic() + 30
        while not tmux.dead():
            assert time.monotonic() < deadline, tmux.screen()
            time.sleep(0.2)
    finally:
        tmux.kill()
